//! `authorization_code` grant (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3) with PKCE (RFC 7636).

use async_trait::async_trait;
use tracing::{info, warn};

use super::refresh_token::IN_DOUBT_WINDOW;
use super::{GrantContext, GrantFacts, GrantHandler, Issue, UserGrant, first_refresh};
use crate::model::GrantType;
use crate::request::Params;
use crate::secret::{Secret, SecretHash};
use crate::store::{CodeMismatch, CodePresentation, Consumed, PendingGrant};
use crate::{ErrorCode, OAuthError, pkce};

/// Redeems a code for tokens.
pub struct AuthorizationCode;

#[async_trait]
impl GrantHandler for AuthorizationCode {
    fn grant_type(&self) -> GrantType {
        GrantType::AuthorizationCode
    }

    async fn handle(&self, cx: &GrantContext<'_>, params: &Params) -> Result<Issue, OAuthError> {
        let code = params.require("code")?;
        let verifier = params.require("code_verifier")?;
        if !pkce::is_well_formed(verifier) {
            return Err(OAuthError::invalid_request("code_verifier must be 43-128 unreserved characters"));
        }
        let store = &cx.provider.store;
        // The binding is checked inside the store's redemption: a request that does not
        // match (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 9449 §10) leaves the code unused.
        let presented = CodePresentation {
            client_id: cx.client.client_id.to_string(),
            redirect_uri: params.get("redirect_uri").map(str::to_owned),
            code_verifier: Secret::new(verifier),
            dpop_jkt: cx.dpop_jkt.map(str::to_owned),
        };
        let code_hash = SecretHash::of(code);
        let redeemed = match store.redeem_code(&code_hash, &presented, cx.now).await {
            Ok(redeemed) => redeemed,
            Err(error) => {
                if error.is_in_doubt() {
                    // The store could not tell whether this redemption committed: let
                    // one retry of it through rather than revoke the grant (see
                    // `retry_in_doubt`).
                    cx.provider.code_in_doubt.note(store.clone(), &code_hash, cx.now);
                }
                return Err(error.into());
            }
        };
        let grant = match redeemed {
            Ok(Consumed::Fresh(grant)) => grant,
            Ok(Consumed::Replayed { grant_id }) => {
                match retry_in_doubt(cx, &code_hash, &presented, &grant_id).await? {
                    Some(grant) => grant,
                    None => {
                        // RFC 6749 §4.1.2: a code used twice revokes what was issued from it.
                        warn!(client_id = %cx.client.client_id, "authorization code reused: revoking its grant");
                        super::revoke_grant(cx.provider, &grant_id, cx.now).await?;
                        return Err(OAuthError::invalid_grant("authorization code already used"));
                    }
                }
            }
            Ok(Consumed::Missing) => {
                return Err(OAuthError::invalid_grant("unknown or expired authorization code"));
            }
            Err(mismatch) => {
                info!(client_id = %cx.client.client_id, ?mismatch, "code redemption refused; the code stays unused");
                return Err(refusal(mismatch));
            }
        };
        let audience = cx
            .provider
            .catalog
            .grant_user_access(cx.client, Some(&grant.scopes.join(" ")), &grant.resources)?
            .audience;
        let refresh = first_refresh(
            cx,
            &GrantFacts {
                grant_id: &grant.grant_id,
                subject: &grant.subject,
                scopes: &grant.scopes,
                resources: &grant.resources,
                auth_time: grant.auth_time,
                sid: &grant.sid,
                amr: &grant.amr,
                acr: grant.acr.as_deref(),
            },
        );
        Ok(Issue {
            subject: grant.subject,
            scopes: grant.scopes,
            audience,
            user: Some(UserGrant {
                grant_id: grant.grant_id,
                auth_time: grant.auth_time,
                sid: grant.sid,
                nonce: grant.nonce,
                refresh,
                amr: grant.amr,
                acr: grant.acr,
            }),
            act: None,
            issued_token_type: None,
            derived_grant: None,
        })
    }
}

/// A used code came back. When its redemption was answered `temporarily_unavailable`
/// with its commit in doubt (noted within [`IN_DOUBT_WINDOW`]), the first retry that
/// matches the code's binding (client, `redirect_uri`, verifier, DPoP key) is answered
/// as the redemption the client never heard of: claimed once, atomically, in the store,
/// so of any number of retries on any instance exactly one gets tokens. `None`: reuse.
/// Only reached on a replay, so the normal redemption costs nothing more.
async fn retry_in_doubt(
    cx: &GrantContext<'_>,
    code_hash: &SecretHash,
    presented: &CodePresentation,
    grant_id: &str,
) -> Result<Option<PendingGrant>, OAuthError> {
    let store = cx.provider.store.as_ref();
    if !cx.provider.code_in_doubt.is_noted(store, code_hash, cx.now).await {
        return Ok(None);
    }
    let Some(grant) = store.redeemed_code(code_hash, cx.now).await? else { return Ok(None) };
    if grant.grant_id != grant_id || grant.mismatch(presented).is_some() {
        return Ok(None);
    }
    let claim = format!("code-in-doubt-claimed:{}", code_hash.to_base64url());
    if !store.remember_once(&claim, cx.now + IN_DOUBT_WINDOW, cx.now).await? {
        return Ok(None);
    }
    info!(client_id = %cx.client.client_id, "retry of an in-doubt code redemption: answered once");
    Ok(Some(grant))
}

/// The error for a request that does not match the code's binding.
fn refusal(mismatch: CodeMismatch) -> OAuthError {
    match mismatch {
        CodeMismatch::Client => OAuthError::invalid_grant("the code was issued to another client"),
        CodeMismatch::RedirectUri => {
            OAuthError::invalid_grant("redirect_uri does not match the authorization request")
        }
        CodeMismatch::CodeVerifier => {
            OAuthError::invalid_grant("code_verifier does not match the code_challenge")
        }
        CodeMismatch::DpopKey => {
            OAuthError::new(ErrorCode::InvalidDpopProof, "the code is bound to another DPoP key")
        }
    }
}
