//! `urn:openid:params:grant-type:ciba` (CIBA Core §10.1).

use async_trait::async_trait;

use super::polling::{self, InDoubtRedemptions};
use super::{GrantContext, GrantHandler, Issue};
use crate::OAuthError;
use crate::model::GrantType;
use crate::model::{CIBA_POLL_INTERVAL as POLL_INTERVAL, ciba_request_id as request_id};
use crate::request::Params;

/// The client collects the result of a backchannel authentication.
#[derive(Default)]
pub struct Ciba {
    /// Redemptions answered `temporarily_unavailable` whose delete may have committed.
    in_doubt: InDoubtRedemptions,
}

#[async_trait]
impl GrantHandler for Ciba {
    fn grant_type(&self) -> GrantType {
        GrantType::Ciba
    }

    async fn handle(&self, cx: &GrantContext<'_>, params: &Params) -> Result<Issue, OAuthError> {
        let auth_req_id = params.require("auth_req_id")?;
        polling::poll::<crate::store::CibaRequests>(
            cx,
            &self.in_doubt,
            &request_id(auth_req_id),
            POLL_INTERVAL,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::Ciba;
    use crate::ErrorCode;
    use crate::grants::testing::{Bench, approved, decoupled_request, refused, web_client};
    use crate::model::Decision;
    use crate::model::ciba_request_id as request_id;
    use crate::store::CibaRequests;

    #[tokio::test]
    async fn a_backchannel_request_is_pending_until_approved_then_redeemed_once() {
        let bench = Bench::new();
        let key = request_id("the-auth-req-id");
        let mut request = decoupled_request("bank", bench.now(), Decision::Pending);
        request.acr_values = vec!["mfa".into()];
        bench.decoupled::<CibaRequests>(&key, &request).await;
        let grant = Ciba::default();
        let params = [("auth_req_id", "the-auth-req-id")];
        assert_eq!(
            refused(bench.run(&grant, &web_client("bank"), &params, None).await),
            ErrorCode::AuthorizationPending
        );
        bench.clock.advance(5);
        request.decision = approved(bench.now());
        bench.decoupled::<CibaRequests>(&key, &request).await;
        let issue = bench.run(&grant, &web_client("bank"), &params, None).await.unwrap();
        assert_eq!(
            issue.user.unwrap().acr.as_deref(),
            Some("mfa"),
            "CIBA Core §7.1: the requested level reached"
        );
        bench.clock.advance(5);
        assert_eq!(
            refused(bench.run(&grant, &web_client("bank"), &params, None).await),
            ErrorCode::InvalidGrant
        );
    }

    #[tokio::test]
    async fn an_auth_req_id_of_another_client_is_invalid_grant() {
        let bench = Bench::new();
        bench
            .decoupled::<CibaRequests>(
                &request_id("id-1"),
                &decoupled_request("bank", bench.now(), approved(bench.now())),
            )
            .await;
        let params = [("auth_req_id", "id-1")];
        assert_eq!(
            refused(bench.run(&Ciba::default(), &web_client("shop"), &params, None).await),
            ErrorCode::InvalidGrant
        );
        assert_eq!(
            refused(bench.run(&Ciba::default(), &web_client("bank"), &[], None).await),
            ErrorCode::InvalidRequest
        );
    }
}
