//! Backchannel authentication requests (CIBA Core §7), and each user's list of them
//! for the approvals page.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::decoupled::{self, DecoupledFlow, DecoupledRequests};
use super::{Flow, FlowStore, PollStore, RequestStore};
use crate::model::{Decision, PendingAuthorization};
use crate::{OAuthError, Timestamp};

/// CIBA requests, by the hash of their `auth_req_id`.
pub struct CibaRequests;

impl Flow for CibaRequests {
    const NAMESPACE: &'static str = "ciba:";
    const NAME: &'static str = "CIBA request";
    type Document = PendingAuthorization;
}

impl DecoupledFlow for CibaRequests {}

/// Each user's pending requests, by `{subject}:{id}`.
pub struct UsersRequests;

/// What a user's entry names.
#[derive(Debug, Serialize, Deserialize)]
pub struct UsersRequest {
    /// The request's store key (`ciba:` and its id).
    pub key: String,
}

impl Flow for UsersRequests {
    const NAMESPACE: &'static str = "ciba-user:";
    const NAME: &'static str = "user's CIBA request";
    type Document = UsersRequest;
}

fn user_entry(subject: &str, id: &str) -> String {
    format!("{subject}:{id}")
}

/// CIBA requests: polled through [`DecoupledRequests`], started, listed and decided
/// here. Implemented for every store over its flow documents and polls.
#[async_trait]
pub trait CibaStore: DecoupledRequests<CibaRequests> {
    /// Starts request `id` for the user it names (`request.subject`).
    ///
    /// # Errors
    /// When the store fails; `server_error` for a request that names no user.
    async fn start_ciba_request(&self, id: &str, request: &PendingAuthorization) -> Result<(), OAuthError>;

    /// `subject`'s pending, unexpired requests, with their ids, by id.
    ///
    /// # Errors
    /// When the store fails, or a stored document does not decode (`server_error`).
    async fn pending_ciba_requests(
        &self,
        subject: &str,
        now: Timestamp,
    ) -> Result<Vec<(String, PendingAuthorization)>, OAuthError>;

    /// Pending -> decided in one conditional write: `Some(request as decided)` when
    /// this call decided it, `None` when it was gone, expired or decided already (of
    /// racing decisions exactly one wins). A decided request leaves its user's list.
    ///
    /// # Errors
    /// When the store fails, or the stored request does not decode (`server_error`).
    async fn decide_ciba_request(
        &self,
        id: &str,
        decision: &Decision,
        now: Timestamp,
    ) -> Result<Option<PendingAuthorization>, OAuthError>;
}

#[async_trait]
impl<S: RequestStore + PollStore + ?Sized> CibaStore for S {
    async fn start_ciba_request(&self, id: &str, request: &PendingAuthorization) -> Result<(), OAuthError> {
        let Some(subject) = request.subject.as_deref() else {
            return Err(OAuthError::server_error("a CIBA request that names no user"));
        };
        decoupled::start::<CibaRequests, S>(self, id, request).await?;
        let index = UsersRequest { key: CibaRequests::key(id) };
        FlowStore::<UsersRequests, S>::new(self)
            .start(&user_entry(subject, id), &index, request.expires_at)
            .await
    }

    async fn pending_ciba_requests(
        &self,
        subject: &str,
        now: Timestamp,
    ) -> Result<Vec<(String, PendingAuthorization)>, OAuthError> {
        let prefix = user_entry(subject, "");
        let mut pending = Vec::new();
        for (entry, _) in FlowStore::<UsersRequests, S>::new(self).list(&prefix, now).await? {
            let id = entry.trim_start_matches(&prefix).to_owned();
            if let Some(request) =
                DecoupledRequests::<CibaRequests>::decoupled_request(self, &id, now).await?
                && request.decision == Decision::Pending
                && request.expires_at > now
            {
                pending.push((id, request));
            }
        }
        Ok(pending)
    }

    async fn decide_ciba_request(
        &self,
        id: &str,
        decision: &Decision,
        now: Timestamp,
    ) -> Result<Option<PendingAuthorization>, OAuthError> {
        let Some(decided) = decoupled::decide::<CibaRequests, S>(self, id, decision, now).await? else {
            return Ok(None);
        };
        if let Some(subject) = &decided.subject {
            FlowStore::<UsersRequests, S>::new(self).take(&user_entry(subject, id), now).await?;
        }
        Ok(Some(decided))
    }
}
