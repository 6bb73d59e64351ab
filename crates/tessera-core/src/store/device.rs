//! Device authorization requests (RFC 8628) and the user codes that name them (§6.1).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::decoupled::{self, DecoupledFlow, DecoupledRequests};
use super::{Flow, FlowStore, PollStore, ReplayStore, RequestStore};
use crate::model::{Decision, PendingAuthorization};
use crate::{OAuthError, Timestamp};

/// Device requests, by the hash of their `device_code`.
pub struct DeviceRequests;

impl Flow for DeviceRequests {
    const NAMESPACE: &'static str = "device:";
    const NAME: &'static str = "device request";
    type Document = PendingAuthorization;
}

impl DecoupledFlow for DeviceRequests {}

/// User codes, by their normalized form: the request each names.
pub struct UserCodes;

/// What a user code names.
#[derive(Debug, Serialize, Deserialize)]
pub struct UserCodeIndex {
    /// The named request's store key (`device:` and its id).
    pub device: String,
}

impl Flow for UserCodes {
    const NAMESPACE: &'static str = "device-user-code:";
    const NAME: &'static str = "user code";
    type Document = UserCodeIndex;
}

/// The single-use marks by which user codes are claimed (`ReplayStore`), by code.
pub const USER_CODE_CLAIMS: &str = "device-user-code-claim:";

/// Device requests: polled through [`DecoupledRequests`], started and decided here.
/// Implemented for every store over its flow documents, polls and single-use marks.
#[async_trait]
pub trait DeviceStore: DecoupledRequests<DeviceRequests> {
    /// Starts request `id` under its user code (`request.user_code`, normalized).
    /// `false`, and nothing stored, when a live request already holds that code: the
    /// code is claimed in one atomic step, so of racing starts drawing one code one
    /// gets it.
    ///
    /// # Errors
    /// When the store fails; `server_error` for a request without a user code.
    async fn start_device_request(
        &self,
        id: &str,
        request: &PendingAuthorization,
        now: Timestamp,
    ) -> Result<bool, OAuthError>;

    /// The pending, unexpired request that the (normalized) `user_code` names, with its id.
    ///
    /// # Errors
    /// When the store fails, or a stored document does not decode (`server_error`).
    async fn pending_device_request(
        &self,
        user_code: &str,
        now: Timestamp,
    ) -> Result<Option<(String, PendingAuthorization)>, OAuthError>;

    /// Pending -> decided in one conditional write: `Some(request as decided)` when
    /// this call decided it, `None` when it was gone, expired or decided already (of
    /// racing decisions exactly one wins). A decided request's user code is spent.
    ///
    /// # Errors
    /// When the store fails, or the stored request does not decode (`server_error`).
    async fn decide_device_request(
        &self,
        id: &str,
        decision: &Decision,
        now: Timestamp,
    ) -> Result<Option<PendingAuthorization>, OAuthError>;
}

#[async_trait]
impl<S: RequestStore + PollStore + ReplayStore + ?Sized> DeviceStore for S {
    async fn start_device_request(
        &self,
        id: &str,
        request: &PendingAuthorization,
        now: Timestamp,
    ) -> Result<bool, OAuthError> {
        let Some(user_code) = request.user_code.as_deref() else {
            return Err(OAuthError::server_error("a device request without a user code"));
        };
        // The claim outlives the code's index, so a code is never handed out twice
        // while a request or its index can hold it.
        let claim = format!("{USER_CODE_CLAIMS}{user_code}");
        if !self.remember_once(&claim, request.expires_at, now).await? {
            return Ok(false);
        }
        // A code an earlier release handed out has an index but no claim.
        let user_codes = FlowStore::<UserCodes, S>::new(self);
        if user_codes.read(user_code, now).await?.is_some() {
            return Ok(false);
        }
        decoupled::start::<DeviceRequests, S>(self, id, request).await?;
        let index = UserCodeIndex { device: DeviceRequests::key(id) };
        user_codes.start(user_code, &index, request.expires_at).await?;
        Ok(true)
    }

    async fn pending_device_request(
        &self,
        user_code: &str,
        now: Timestamp,
    ) -> Result<Option<(String, PendingAuthorization)>, OAuthError> {
        let Some(index) = FlowStore::<UserCodes, S>::new(self).read(user_code, now).await? else {
            return Ok(None);
        };
        let Some(id) = index.device.strip_prefix(DeviceRequests::NAMESPACE) else { return Ok(None) };
        let request = DecoupledRequests::<DeviceRequests>::decoupled_request(self, id, now).await?;
        Ok(request
            .filter(|request| request.decision == Decision::Pending && request.expires_at > now)
            .map(|request| (id.to_owned(), request)))
    }

    async fn decide_device_request(
        &self,
        id: &str,
        decision: &Decision,
        now: Timestamp,
    ) -> Result<Option<PendingAuthorization>, OAuthError> {
        let Some(decided) = decoupled::decide::<DeviceRequests, S>(self, id, decision, now).await? else {
            return Ok(None);
        };
        // The code is spent once decided: it cannot be entered again.
        if let Some(user_code) = &decided.user_code {
            FlowStore::<UserCodes, S>::new(self).take(user_code, now).await?;
        }
        Ok(Some(decided))
    }
}
