//! `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4).

use async_trait::async_trait;

use super::polling::{self, InDoubtRedemptions};
use super::{GrantContext, GrantHandler, Issue};
use crate::OAuthError;
use crate::model::GrantType;
use crate::model::{DEVICE_POLL_INTERVAL as POLL_INTERVAL, device_request_id as device_id};
use crate::request::Params;

/// A device polls for the user's decision.
#[derive(Default)]
pub struct DeviceCode {
    /// Redemptions answered `temporarily_unavailable` whose delete may have committed.
    in_doubt: InDoubtRedemptions,
}

#[async_trait]
impl GrantHandler for DeviceCode {
    fn grant_type(&self) -> GrantType {
        GrantType::DeviceCode
    }

    async fn handle(&self, cx: &GrantContext<'_>, params: &Params) -> Result<Issue, OAuthError> {
        let device_code = params.require("device_code")?;
        polling::poll::<crate::store::DeviceRequests>(
            cx,
            &self.in_doubt,
            &device_id(device_code),
            POLL_INTERVAL,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::DeviceCode;
    use crate::ErrorCode;
    use crate::grants::RefreshPlan;
    use crate::grants::testing::{Bench, approved, decoupled_request, refused, web_client};
    use crate::model::Decision;
    use crate::model::{DEVICE_POLL_INTERVAL as POLL_INTERVAL, device_request_id as device_id};
    use crate::store::{DeviceRequests, Flow as _};

    fn poll() -> [(&'static str, &'static str); 1] {
        [("device_code", "the-device-code")]
    }

    async fn bench_with(decision: Decision) -> Bench {
        let bench = Bench::new();
        bench
            .decoupled::<DeviceRequests>(
                &device_id("the-device-code"),
                &decoupled_request("tv", bench.now(), decision),
            )
            .await;
        bench
    }

    #[tokio::test]
    async fn a_pending_request_is_authorization_pending_and_a_poll_too_soon_is_slow_down() {
        let bench = bench_with(Decision::Pending).await;
        let grant = DeviceCode::default();
        let client = web_client("tv");
        assert_eq!(refused(bench.run(&grant, &client, &poll(), None).await), ErrorCode::AuthorizationPending);
        assert_eq!(refused(bench.run(&grant, &client, &poll(), None).await), ErrorCode::SlowDown);
        // RFC 8628 §3.5: each slow_down adds five seconds; the first interval is too soon now.
        bench.clock.advance(POLL_INTERVAL);
        assert_eq!(refused(bench.run(&grant, &client, &poll(), None).await), ErrorCode::SlowDown);
        bench.clock.advance(POLL_INTERVAL + 2 * 5);
        assert_eq!(refused(bench.run(&grant, &client, &poll(), None).await), ErrorCode::AuthorizationPending);
    }

    #[tokio::test]
    async fn an_approved_request_is_redeemed_once_with_the_approving_sign_in() {
        let bench = bench_with(approved(Bench::new().now())).await;
        let grant = DeviceCode::default();
        let issue = bench.run(&grant, &web_client("tv"), &poll(), None).await.unwrap();
        assert_eq!(issue.subject, "alice");
        assert_eq!(issue.audience, ["api1"]);
        let user = issue.user.unwrap();
        assert_eq!(user.amr, ["pwd", "otp", "mfa"]);
        assert_eq!(user.acr.as_deref(), Some("mfa"));
        assert!(matches!(user.refresh, RefreshPlan::Start(_)));
        bench.clock.advance(POLL_INTERVAL);
        let again = bench.run(&grant, &web_client("tv"), &poll(), None).await;
        assert_eq!(refused(again), ErrorCode::InvalidGrant);
    }

    #[tokio::test]
    async fn a_denied_request_is_access_denied_once_and_then_gone() {
        let bench = bench_with(Decision::Denied).await;
        let grant = DeviceCode::default();
        assert_eq!(
            refused(bench.run(&grant, &web_client("tv"), &poll(), None).await),
            ErrorCode::AccessDenied
        );
        bench.clock.advance(POLL_INTERVAL);
        assert_eq!(
            refused(bench.run(&grant, &web_client("tv"), &poll(), None).await),
            ErrorCode::InvalidGrant
        );
    }

    #[tokio::test]
    async fn another_clients_poll_is_invalid_grant_and_redeems_nothing() {
        let bench = bench_with(approved(Bench::new().now())).await;
        let grant = DeviceCode::default();
        assert_eq!(
            refused(bench.run(&grant, &web_client("other"), &poll(), None).await),
            ErrorCode::InvalidGrant
        );
        bench.run(&grant, &web_client("tv"), &poll(), None).await.unwrap();
    }

    #[tokio::test]
    async fn an_expired_request_is_expired_token_and_an_unknown_one_invalid_grant() {
        let bench = bench_with(approved(Bench::new().now())).await;
        let grant = DeviceCode::default();
        let unknown = bench.run(&grant, &web_client("tv"), &[("device_code", "another")], None).await;
        assert_eq!(refused(unknown), ErrorCode::InvalidGrant);
        bench.clock.advance(601);
        assert_eq!(
            refused(bench.run(&grant, &web_client("tv"), &poll(), None).await),
            ErrorCode::ExpiredToken
        );
        let missing = bench.run(&grant, &web_client("tv"), &[], None).await;
        assert_eq!(refused(missing), ErrorCode::InvalidRequest);
    }

    #[tokio::test]
    async fn a_stored_request_that_does_not_decode_is_server_error_not_expired() {
        let bench = Bench::new();
        let key = DeviceRequests::key(&device_id("the-device-code"));
        let damaged = serde_json::json!({ "client_id": "tv", "decision": { "status": "maybe" } });
        // Kept as the flow keeps its requests: past their own expiry, for late polls.
        let kept_until = bench.now() + 600 + crate::model::KEPT_AFTER_EXPIRY;
        crate::store::PollStore::put_polled(bench.store.as_ref(), &key, "pending", &damaged, kept_until)
            .await
            .unwrap();
        let result = bench.run(&DeviceCode::default(), &web_client("tv"), &poll(), None).await;
        assert_eq!(refused(result), ErrorCode::ServerError);
    }
}
