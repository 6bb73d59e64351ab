//! Remembered consent per user and client.

use async_trait::async_trait;

use super::StoreResult;

/// Remembered consent per user and client.
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// The scopes the user already granted the client.
    async fn consented_scopes(&self, subject: &str, client_id: &str) -> StoreResult<Vec<String>>;
    /// Replaces the scopes the user granted the client.
    async fn put_consent(&self, subject: &str, client_id: &str, scopes: &[String]) -> StoreResult<()>;
}
