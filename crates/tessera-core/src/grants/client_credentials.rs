//! `client_credentials` grant (RFC 6749 §4.4).

use async_trait::async_trait;

use super::{GrantContext, GrantHandler, Issue};
use crate::OAuthError;
use crate::model::GrantType;
use crate::request::Params;

/// A machine acting on its own behalf.
pub struct ClientCredentials;

#[async_trait]
impl GrantHandler for ClientCredentials {
    fn grant_type(&self) -> GrantType {
        GrantType::ClientCredentials
    }

    async fn handle(&self, cx: &GrantContext<'_>, params: &Params) -> Result<Issue, OAuthError> {
        // RFC 6749 §4.4: confidential clients only.
        if cx.client.is_public() {
            return Err(OAuthError::unauthorized_client("client_credentials needs a confidential client"));
        }
        let grant =
            cx.provider.catalog.grant_api_access(cx.client, params.get("scope"), params.resources())?;
        // RFC 9068 §2.2: with no user, `sub` is the client itself.
        // No refresh token: RFC 6749 §4.4.3 says one SHOULD NOT be included.
        Ok(Issue {
            subject: cx.client.client_id.to_string(),
            scopes: grant.scopes,
            audience: grant.audience,
            user: None,
            act: None,
            issued_token_type: None,
            derived_grant: None,
        })
    }
}
