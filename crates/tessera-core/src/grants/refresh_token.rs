//! `refresh_token` grant (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2): every use returns a new token; a used one revokes the family.

use async_trait::async_trait;
use tracing::warn;

use super::{GrantContext, GrantHandler, Issue, RefreshPlan, UserGrant};
use crate::OAuthError;
use crate::catalog::parse_scope;
use crate::model::GrantType;
use crate::request::Params;
use crate::secret::{Secret, SecretHash, constant_time_eq};
use crate::settings::RefreshExpiration;
use crate::store::{Consumed, RefreshRecord};

/// Exchanges a refresh token for new tokens and a new refresh token.
pub struct RefreshToken;

#[async_trait]
impl GrantHandler for RefreshToken {
    fn grant_type(&self) -> GrantType {
        GrantType::RefreshToken
    }

    async fn handle(&self, cx: &GrantContext<'_>, params: &Params) -> Result<Issue, OAuthError> {
        let presented = SecretHash::of(params.require("refresh_token")?);
        let store = &cx.provider.store;
        let record = match store.refresh_token(&presented).await? {
            Consumed::Fresh(record) => record,
            Consumed::Replayed { grant_id } => return Err(reuse_detected(cx, &grant_id).await),
            Consumed::Missing => {
                return Err(OAuthError::invalid_grant("unknown, expired or revoked refresh token"));
            }
        };
        // Checked before anything changes: a wrong client, key or scope uses nothing up.
        if record.client_id != cx.client.client_id.as_str() {
            return Err(OAuthError::invalid_grant("the refresh token was issued to another client"));
        }
        // RFC 9449 §5: a bound refresh token needs a proof from the same key.
        if let Some(bound) = &record.dpop_jkt
            && cx.dpop_jkt != Some(bound.as_str())
        {
            return Err(OAuthError::new(
                crate::ErrorCode::InvalidDpopProof,
                "the refresh token is bound to another DPoP key",
            ));
        }
        // RFC 8705 §4: so does one bound to a client certificate, over TLS with it.
        if let Some(bound) = &record.x5t_s256
            && !cx.certificate_thumbprint.is_some_and(|presented| constant_time_eq(presented, bound))
        {
            return Err(OAuthError::invalid_grant(
                "the refresh token is bound to another client certificate",
            ));
        }
        let scopes = match params.get("scope") {
            // RFC 6749 §6: the scope may narrow, never widen.
            Some(text) => {
                let requested = parse_scope(text)?;
                if let Some(extra) = requested.iter().find(|s| !record.scopes.contains(s)) {
                    return Err(OAuthError::invalid_scope(format!("scope `{extra}` was not granted")));
                }
                requested
            }
            None => record.scopes.clone(),
        };
        let audience = cx
            .provider
            .catalog
            .grant_user_access(cx.client, Some(&scopes.join(" ")), &record.resources)?
            .audience;

        let next = Secret::new(cx.provider.rng.token());
        let idle_expires_at = (cx.client.refresh_token_expiration == RefreshExpiration::Sliding)
            .then(|| (cx.now + cx.client.sliding_refresh_token_lifetime).min(record.expires_at));
        // The successor keeps the grant's full scope and its absolute expiry.
        let successor = RefreshRecord { issued_at: cx.now, idle_expires_at, ..record.clone() };
        match store
            .rotate_refresh_token(&presented, &SecretHash::of(next.expose()), &successor, cx.now)
            .await?
        {
            Consumed::Fresh(()) => {}
            Consumed::Replayed { grant_id } => return Err(reuse_detected(cx, &grant_id).await),
            Consumed::Missing => {
                return Err(OAuthError::invalid_grant("unknown, expired or revoked refresh token"));
            }
        }
        Ok(Issue {
            subject: record.subject,
            scopes,
            audience,
            user: Some(UserGrant {
                grant_id: record.grant_id,
                auth_time: record.auth_time,
                sid: record.sid,
                nonce: None,
                refresh: RefreshPlan::Rotated(next),
            }),
            act: None,
            issued_token_type: None,
            derived_grant: None,
        })
    }
}

/// A used refresh token came back: someone holds a stolen copy. Revoke the family.
async fn reuse_detected(cx: &GrantContext<'_>, grant_id: &str) -> OAuthError {
    warn!(client_id = %cx.client.client_id, "refresh token reused: revoking its grant");
    if let Err(error) = super::revoke_grant(cx.provider, grant_id, cx.now).await {
        return error;
    }
    OAuthError::invalid_grant("refresh token already used")
}
