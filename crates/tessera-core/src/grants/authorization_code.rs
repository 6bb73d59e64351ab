//! `authorization_code` grant (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3) with PKCE (RFC 7636).

use async_trait::async_trait;
use tracing::warn;

use super::{GrantContext, GrantFacts, GrantHandler, Issue, UserGrant, first_refresh};
use crate::model::GrantType;
use crate::request::Params;
use crate::secret::SecretHash;
use crate::store::Consumed;
use crate::{OAuthError, pkce};

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
        let grant = match store.consume_code(&SecretHash::of(code), cx.now).await? {
            Consumed::Fresh(grant) => grant,
            Consumed::Replayed { grant_id } => {
                // RFC 6749 §4.1.2: a code used twice revokes what was issued from it.
                warn!(client_id = %cx.client.client_id, "authorization code reused: revoking its grant");
                super::revoke_grant(cx.provider, &grant_id, cx.now).await?;
                return Err(OAuthError::invalid_grant("authorization code already used"));
            }
            Consumed::Missing => {
                return Err(OAuthError::invalid_grant("unknown or expired authorization code"));
            }
        };
        if grant.client_id != cx.client.client_id.as_str() {
            return Err(OAuthError::invalid_grant("the code was issued to another client"));
        }
        // RFC 6749 §4.1.3: the same redirect_uri, when one was sent to /authorize.
        if let Some(expected) = &grant.redirect_uri
            && params.get("redirect_uri") != Some(expected.as_str())
        {
            return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request"));
        }
        // RFC 7636 §4.6.
        if !pkce::verify(verifier, &grant.code_challenge) {
            return Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge"));
        }
        // RFC 9449 §10: a code requested with `dpop_jkt` is redeemed only with that key.
        if let Some(bound) = &grant.dpop_jkt
            && cx.dpop_jkt != Some(bound.as_str())
        {
            return Err(OAuthError::new(
                crate::ErrorCode::InvalidDpopProof,
                "the code is bound to another DPoP key",
            ));
        }
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
            }),
            act: None,
            issued_token_type: None,
            derived_grant: None,
        })
    }
}
