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
        let grant = cx.catalog.grant_api_access(cx.client, params.get("scope"), params.resources())?;
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

#[cfg(test)]
mod tests {
    use super::ClientCredentials;
    use crate::ErrorCode;
    use crate::grants::testing::{Bench, public_client, refused};
    use crate::test_support::service_client;

    #[tokio::test]
    async fn a_machine_gets_the_scopes_it_asks_for_with_their_api_as_audience_and_itself_as_subject() {
        let bench = Bench::new();
        let client = service_client("svc", &["api1.read", "api2.read"]);
        let issue = bench.run(&ClientCredentials, &client, &[("scope", "api1.read")], None).await.unwrap();
        assert_eq!(issue.subject, "svc");
        assert_eq!(issue.scopes, ["api1.read"]);
        assert_eq!(issue.audience, ["api1"]);
        assert!(issue.user.is_none(), "RFC 6749 §4.4.3: no refresh token, no user");
    }

    #[tokio::test]
    async fn without_a_scope_a_machine_gets_every_api_scope_it_is_allowed() {
        let bench = Bench::new();
        let client = service_client("svc", &["api1.read", "api2.read"]);
        let issue = bench.run(&ClientCredentials, &client, &[], None).await.unwrap();
        assert_eq!(issue.scopes, ["api1.read", "api2.read"]);
        assert_eq!(issue.audience, ["api1", "api2"]);
    }

    #[tokio::test]
    async fn a_scope_the_client_may_not_request_is_invalid_scope() {
        let bench = Bench::new();
        let client = service_client("svc", &["api1.read"]);
        let wider = bench.run(&ClientCredentials, &client, &[("scope", "api1.write")], None).await;
        assert_eq!(refused(wider), ErrorCode::InvalidScope);
    }

    #[tokio::test]
    async fn a_user_scope_needs_a_signed_in_user() {
        let bench = Bench::new();
        let client = service_client("svc", &["api1.read", "openid"]);
        let user_scope = bench.run(&ClientCredentials, &client, &[("scope", "openid api1.read")], None).await;
        assert_eq!(refused(user_scope), ErrorCode::InvalidScope);
    }

    #[tokio::test]
    async fn a_resource_the_scopes_do_not_reach_is_invalid_target() {
        let bench = Bench::new();
        let client = service_client("svc", &["api1.read"]);
        let params = [("scope", "api1.read"), ("resource", "api2")];
        assert_eq!(
            refused(bench.run(&ClientCredentials, &client, &params, None).await),
            ErrorCode::InvalidTarget
        );
    }

    #[tokio::test]
    async fn a_public_client_is_unauthorized_client() {
        let bench = Bench::new();
        let client = public_client("spa", &["api1.read"]);
        let result = bench.run(&ClientCredentials, &client, &[("scope", "api1.read")], None).await;
        assert_eq!(refused(result), ErrorCode::UnauthorizedClient);
    }
}
