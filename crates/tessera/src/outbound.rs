//! Outbound HTTP: fetching client JWK Sets for `private_key_jwt` (RFC 7523), and
//! notifications (CIBA ping delivery, the operator's webhook).

use std::time::Duration;

use async_trait::async_trait;
use tessera_core::client_auth::JwksSource;
use tessera_core::notify::Notifier;

/// The largest JWK Set accepted from a client.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Fetches JWK Sets and sends notifications with reqwest: short timeouts, no
/// redirects, bounded responses.
#[derive(Debug, Clone)]
pub struct HttpJwksSource {
    client: reqwest::Client,
}

impl HttpJwksSource {
    /// A fetcher with a 5 s timeout.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS roots).
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client })
    }
}

#[async_trait]
impl JwksSource for HttpJwksSource {
    async fn fetch(&self, uri: &str) -> Result<serde_json::Value, String> {
        let mut response = self.client.get(uri).send().await.map_err(|e| format!("fetch failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        if response.content_length().is_some_and(|len| len > MAX_JWKS_BYTES as u64) {
            return Err("JWK Set too large".into());
        }
        // Read chunk by chunk and stop at the cap: a hostile host may send no length, or
        // a false one, and an endless body.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("read failed: {e}"))? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err("JWK Set too large".into());
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))
    }
}

#[async_trait]
impl Notifier for HttpJwksSource {
    async fn post_json(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<(), String> {
        let mut request = self.client.post(url).json(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| format!("send failed: {e}"))?;
        if response.status().is_success() { Ok(()) } else { Err(format!("HTTP {}", response.status())) }
    }
}
