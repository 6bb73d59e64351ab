//! `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4).

use async_trait::async_trait;

use super::{GrantContext, GrantHandler, Issue};
use crate::device::{POLL_INTERVAL, device_key};
use crate::model::GrantType;
use crate::request::Params;
use crate::{OAuthError, decoupled};

/// A device polls for the user's decision.
pub struct DeviceCode;

#[async_trait]
impl GrantHandler for DeviceCode {
    fn grant_type(&self) -> GrantType {
        GrantType::DeviceCode
    }

    async fn handle(&self, cx: &GrantContext<'_>, params: &Params) -> Result<Issue, OAuthError> {
        let device_code = params.require("device_code")?;
        decoupled::poll(cx, &device_key(device_code), POLL_INTERVAL).await
    }
}
