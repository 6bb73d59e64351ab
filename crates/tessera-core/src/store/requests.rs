//! The one table of JSON documents by key behind every typed flow store ([`super::FlowStore`]).

use async_trait::async_trait;

use super::StoreResult;
use crate::Timestamp;

/// Authorization requests waiting for sign-in or consent, and pushed requests (PAR),
/// as JSON documents by key.
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
    /// Compare-and-swap: replaces the unexpired request under `key` by `replacement`
    /// (keeping its expiry) only while its document still equals `expected`, in one
    /// atomic step. Of any number of racing swaps from the same `expected`, exactly one
    /// returns `true`; a gone, expired or changed request gives `false`.
    async fn swap_request(
        &self,
        key: &str,
        expected: &serde_json::Value,
        replacement: &serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<bool>;
}
