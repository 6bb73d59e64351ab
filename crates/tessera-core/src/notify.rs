//! Outgoing notifications (CIBA ping delivery, the operator's webhook). The HTTP
//! client lives outside the core.

use async_trait::async_trait;

/// Sends a JSON POST.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// POSTs `body` to `url`, with `Authorization: Bearer` when `bearer` is given.
    async fn post_json(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<(), String>;
}
