//! Token revocation (RFC 7009).

use tracing::info;

use crate::client_auth::AuthenticatedClient;
use crate::request::Params;
use crate::secret::SecretHash;
use crate::store::Consumed;
use crate::tokens::access_token;
use crate::{OAuthError, Provider};

/// Revokes `token` if it is a live access or refresh token of the calling client.
/// Unknown, expired or malformed tokens succeed silently (RFC 7009 §2.2): the
/// client's goal is reached.
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
    // RFC 7009 §2.1: the hint only speeds up the search; an unknown one is ignored.
    let now = provider.clock.now();
    let Some(resolved) = access_token::resolve(&provider.token_issuer(), token, now).await? else {
        return revoke_refresh_token(provider, caller, token, now).await;
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

/// RFC 7009 §2.1: revoking a refresh token revokes its grant, and with it the access
/// tokens issued from the same authorization.
async fn revoke_refresh_token(
    provider: &Provider,
    caller: &AuthenticatedClient,
    token: &str,
    now: crate::Timestamp,
) -> Result<(), OAuthError> {
    let Consumed::Fresh(record) = provider.store.refresh_token(&SecretHash::of(token)).await? else {
        // Unknown, or already used or revoked: nothing left to revoke.
        return Ok(());
    };
    if record.client_id != caller.client.client_id.as_str() {
        info!(client_id = %caller.client.client_id, "revocation refused: token belongs to another client");
        return Err(OAuthError::unauthorized_client("the token was not issued to this client"));
    }
    crate::grants::revoke_grant_in(provider.store.as_ref(), &provider.settings.tokens, &record.grant_id, now)
        .await?;
    info!(client_id = %caller.client.client_id, "revoked refresh token and its grant");
    Ok(())
}
