//! The one table of JSON documents by key behind every typed flow store ([`super::FlowStore`]).

use async_trait::async_trait;

use super::StoreResult;
use crate::Timestamp;

/// The flows' documents by key (authorization requests waiting for sign-in or
/// consent, pushed requests, indexes, second steps, passkey ceremonies, and the marks
/// beside them), as JSON; each read and written through a typed [`super::FlowStore`].
#[async_trait]
pub trait RequestStore: Send + Sync {
    async fn put_request(
        &self,
        key: &str,
        document: &serde_json::Value,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// Reads an unexpired request without using it up.
    async fn request(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>>;
    /// Deletes and returns an unexpired request in one step: single use (RFC 9126 §2.2).
    async fn consume_request(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>>;
    /// Every unexpired request whose key starts with `prefix`, ordered by key.
    async fn requests_with_prefix(
        &self,
        prefix: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<(String, serde_json::Value)>>;
}
