//! Pushed authorization requests (RFC 9126): stored once by `/par`, used once by
//! `/authorize`.

use async_trait::async_trait;

use super::{Flow, FlowStore, RequestStore};
use crate::model::AuthorizationRequest;
use crate::{OAuthError, Timestamp};

/// Pushed requests, by the random part of their `request_uri`.
pub struct PushedRequests;

impl Flow for PushedRequests {
    const NAMESPACE: &'static str = "par:";
    const NAME: &'static str = "pushed request";
    type Document = AuthorizationRequest;
}

/// Pushed requests. Implemented for every store over its table of flow documents
/// ([`RequestStore`]); the backends run the contract of that table.
#[async_trait]
pub trait PushedRequestStore: Send + Sync {
    /// Keeps a pushed request under `id` until `expires_at`.
    ///
    /// # Errors
    /// When the store fails.
    async fn push_request(
        &self,
        id: &str,
        request: &AuthorizationRequest,
        expires_at: Timestamp,
    ) -> Result<(), OAuthError>;

    /// Deletes the live request `id` and returns it, in one step: of racing uses one
    /// gets it (RFC 9126 §4, single use).
    ///
    /// # Errors
    /// When the store fails, or the stored request does not decode (`server_error`).
    async fn take_pushed_request(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<AuthorizationRequest>, OAuthError>;
}

#[async_trait]
impl<S: RequestStore + ?Sized> PushedRequestStore for S {
    async fn push_request(
        &self,
        id: &str,
        request: &AuthorizationRequest,
        expires_at: Timestamp,
    ) -> Result<(), OAuthError> {
        FlowStore::<PushedRequests, S>::new(self).start(id, request, expires_at).await
    }

    async fn take_pushed_request(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<AuthorizationRequest>, OAuthError> {
        FlowStore::<PushedRequests, S>::new(self).take(id, now).await
    }
}
