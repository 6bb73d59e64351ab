//! Authorization requests waiting while the user signs in and consents (RFC 6749
//! §4.1.1), by interaction id.

use async_trait::async_trait;

use super::{Flow, FlowStore, RequestStore};
use crate::model::AuthorizationRequest;
use crate::{OAuthError, Timestamp};

/// Requests waiting for the user, by interaction id.
pub struct Interactions;

impl Flow for Interactions {
    const NAMESPACE: &'static str = "interaction:";
    const NAME: &'static str = "interaction";
    type Document = AuthorizationRequest;
}

/// Interactions. Implemented for every store over its table of flow documents
/// ([`RequestStore`]); the backends run the contract of that table.
#[async_trait]
pub trait InteractionStore: Send + Sync {
    /// Keeps `request` under interaction `id` until `expires_at` (replacing what that
    /// interaction held).
    ///
    /// # Errors
    /// When the store fails.
    async fn save_interaction(
        &self,
        id: &str,
        request: &AuthorizationRequest,
        expires_at: Timestamp,
    ) -> Result<(), OAuthError>;

    /// The request waiting under interaction `id`, left in place.
    ///
    /// # Errors
    /// When the store fails, or the stored request does not decode (`server_error`).
    async fn interaction(&self, id: &str, now: Timestamp)
    -> Result<Option<AuthorizationRequest>, OAuthError>;

    /// Ends interaction `id` and returns its request, in one step: of racing ends
    /// (two tabs, a double submit) one gets it, so a request completes once.
    ///
    /// # Errors
    /// As [`Self::interaction`].
    async fn finish_interaction(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<AuthorizationRequest>, OAuthError>;
}

#[async_trait]
impl<S: RequestStore + ?Sized> InteractionStore for S {
    async fn save_interaction(
        &self,
        id: &str,
        request: &AuthorizationRequest,
        expires_at: Timestamp,
    ) -> Result<(), OAuthError> {
        FlowStore::<Interactions, S>::new(self).start(id, request, expires_at).await
    }

    async fn interaction(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<AuthorizationRequest>, OAuthError> {
        FlowStore::<Interactions, S>::new(self).read(id, now).await
    }

    async fn finish_interaction(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<AuthorizationRequest>, OAuthError> {
        FlowStore::<Interactions, S>::new(self).take(id, now).await
    }
}
