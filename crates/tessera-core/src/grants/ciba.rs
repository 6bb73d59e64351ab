//! `urn:openid:params:grant-type:ciba` (CIBA Core §10.1).

use async_trait::async_trait;

use super::{GrantContext, GrantHandler, Issue};
use crate::ciba::{POLL_INTERVAL, request_key};
use crate::model::GrantType;
use crate::request::Params;
use crate::{OAuthError, decoupled};

/// The client collects the result of a backchannel authentication.
pub struct Ciba;

#[async_trait]
impl GrantHandler for Ciba {
    fn grant_type(&self) -> GrantType {
        GrantType::Ciba
    }

    async fn handle(&self, cx: &GrantContext<'_>, params: &Params) -> Result<Issue, OAuthError> {
        let auth_req_id = params.require("auth_req_id")?;
        decoupled::poll(cx, &request_key(auth_req_id), POLL_INTERVAL).await
    }
}
