//! Client keys published at a `jwks_uri`, fetched through [`JwksSource`] and cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jsonwebtoken::jwk::{Jwk, JwkSet};

use crate::Timestamp;

/// Fetches a JWK Set document; the HTTP client lives outside the core.
#[async_trait]
pub trait JwksSource: Send + Sync {
    /// The JSON body at `uri`.
    async fn fetch(&self, uri: &str) -> Result<serde_json::Value, String>;
}

/// How long a fetched key set is used before it is fetched again.
const FRESH_FOR: i64 = 300;
/// The least time between two forced refetches of one URI (when no key matched).
const REFETCH_AFTER: i64 = 30;

/// Key sets by URI, with when each was fetched.
type Entries = HashMap<String, (Timestamp, Arc<Vec<Jwk>>)>;

/// A cache of client key sets by URI.
pub struct JwksCache {
    source: Arc<dyn JwksSource>,
    entries: Mutex<Entries>,
}

impl JwksCache {
    /// A cache over `source`.
    pub fn new(source: Arc<dyn JwksSource>) -> Self {
        Self { source, entries: Mutex::new(HashMap::new()) }
    }

    /// The keys at `uri`, from the cache when fresh. `refresh` asks for a refetch,
    /// granted at most every 30 s per URI so a flood of bad assertions cannot
    /// turn into a flood of fetches.
    ///
    /// # Errors
    /// When the fetch fails or the document is not a JWK Set.
    pub async fn keys(&self, uri: &str, now: Timestamp, refresh: bool) -> Result<Arc<Vec<Jwk>>, String> {
        if let Some((fetched_at, keys)) = self.lock().get(uri).cloned() {
            let age = now - fetched_at;
            if age < FRESH_FOR && !(refresh && age >= REFETCH_AFTER) {
                return Ok(keys);
            }
        }
        let document = self.source.fetch(uri).await?;
        let set: JwkSet = serde_json::from_value(document).map_err(|e| format!("not a JWK Set: {e}"))?;
        let keys = Arc::new(set.keys);
        let mut entries = self.lock();
        if entries.len() > 10_000 {
            entries.clear();
        }
        entries.insert(uri.to_owned(), (now, keys.clone()));
        Ok(keys)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
