//! Token revocation (RFC 7009).

use tracing::info;

use crate::client_auth::AuthenticatedClient;
use crate::request::Params;
use crate::tokens::access_token;
use crate::{OAuthError, Provider};

/// Revokes `token` if it is a live token of the calling client. Unknown, expired or
/// malformed tokens succeed silently (RFC 7009 §2.2): the client's goal is reached.
///
/// # Errors
/// `invalid_request` without `token`; `unauthorized_client` for another client's
/// token (RFC 7009 §2.1); `server_error` when the store fails.
pub async fn revoke(
    provider: &Provider,
    caller: &AuthenticatedClient,
    params: &Params,
) -> Result<(), OAuthError> {
    let token = params.require("token")?;
    // RFC 7009 §2.1: the hint only speeds up the search; an unknown one is ignored,
    // since access tokens are the only kind this server hands out here.
    let now = provider.clock.now();
    let Some(resolved) = access_token::resolve(provider, token, now).await? else {
        return Ok(());
    };
    if resolved.client_id != caller.client.client_id.as_str() {
        info!(client_id = %caller.client.client_id, "revocation refused: token belongs to another client");
        return Err(OAuthError::unauthorized_client("the token was not issued to this client"));
    }
    match &resolved.reference {
        Some(hash) => {
            provider.store.revoke_reference_token(hash).await?;
        }
        None => provider.store.revoke_jti(&resolved.jti, resolved.expires_at).await?,
    }
    info!(client_id = %caller.client.client_id, jti = %resolved.jti, "revoked access token");
    Ok(())
}
