//! Client keys published at a `jwks_uri`, fetched through [`JwksSource`] and cached.
//! Anyone can make the server look a client's keys up (an assertion naming the client
//! is enough), so fetches are bounded: a failure is remembered as long as a success
//! would block a refetch, and concurrent misses of one URI share one fetch.

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
/// The least time between two fetches of one URI after a failure, or between two
/// forced refetches (when no key matched).
const REFETCH_AFTER: i64 = 30;
/// More URIs than this and the cache starts over (configured clients have far fewer).
const MAX_ENTRIES: usize = 10_000;

/// The outcome of the last fetch of one URI.
#[derive(Clone)]
struct Entry {
    fetched_at: Timestamp,
    keys: Result<Arc<Vec<Jwk>>, String>,
}

impl Entry {
    /// The cached outcome, if it may still be used: keys while fresh (unless a refetch
    /// is asked for and allowed), a failure until a refetch is allowed.
    fn usable(&self, now: Timestamp, refresh: bool) -> Option<Result<Arc<Vec<Jwk>>, String>> {
        let age = now - self.fetched_at;
        let usable = match &self.keys {
            Ok(_) => age < FRESH_FOR && !(refresh && age >= REFETCH_AFTER),
            Err(_) => age < REFETCH_AFTER,
        };
        usable.then(|| self.keys.clone())
    }
}

/// A cache of client key sets by URI.
pub struct JwksCache {
    source: Arc<dyn JwksSource>,
    entries: Mutex<HashMap<String, Entry>>,
    /// One lock per URI: who holds it fetches, the others wait and read the result.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl JwksCache {
    /// A cache over `source`.
    pub fn new(source: Arc<dyn JwksSource>) -> Self {
        Self { source, entries: Mutex::new(HashMap::new()), fetching: Mutex::new(HashMap::new()) }
    }

    /// The keys at `uri`, from the cache when fresh. `refresh` asks for a refetch,
    /// granted at most every 30 s per URI; a failed fetch is not retried for 30 s
    /// either, so a flood of bad assertions cannot turn into a flood of fetches.
    ///
    /// # Errors
    /// When the fetch fails (now or within the last 30 s) or the document is not a
    /// JWK Set.
    pub async fn keys(&self, uri: &str, now: Timestamp, refresh: bool) -> Result<Arc<Vec<Jwk>>, String> {
        if let Some(cached) = self.cached(uri, now, refresh) {
            return cached;
        }
        let flight = {
            let mut fetching = lock(&self.fetching);
            if fetching.len() > MAX_ENTRIES {
                fetching.retain(|_, flight| Arc::strong_count(flight) > 1);
            }
            fetching.entry(uri.to_owned()).or_default().clone()
        };
        let _turn = flight.lock().await;
        // Whoever held the lock before may have fetched it already.
        if let Some(cached) = self.cached(uri, now, refresh) {
            return cached;
        }
        let keys = self.fetch(uri).await;
        let mut entries = lock(&self.entries);
        if entries.len() > MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(uri.to_owned(), Entry { fetched_at: now, keys: keys.clone() });
        keys
    }

    fn cached(&self, uri: &str, now: Timestamp, refresh: bool) -> Option<Result<Arc<Vec<Jwk>>, String>> {
        lock(&self.entries).get(uri).and_then(|entry| entry.usable(now, refresh))
    }

    async fn fetch(&self, uri: &str) -> Result<Arc<Vec<Jwk>>, String> {
        let document = self.source.fetch(uri).await?;
        let set: JwkSet = serde_json::from_value(document).map_err(|e| format!("not a JWK Set: {e}"))?;
        Ok(Arc::new(set.keys))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts fetches; fails or answers an empty set, slowly enough for callers to pile up.
    struct Counting {
        fetches: AtomicUsize,
        fail: bool,
    }

    #[async_trait]
    impl JwksSource for Counting {
        async fn fetch(&self, _uri: &str) -> Result<serde_json::Value, String> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if self.fail { Err("HTTP 500".into()) } else { Ok(serde_json::json!({ "keys": [] })) }
        }
    }

    fn cache(fail: bool) -> (Arc<Counting>, Arc<JwksCache>) {
        let source = Arc::new(Counting { fetches: AtomicUsize::new(0), fail });
        (source.clone(), Arc::new(JwksCache::new(source)))
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_fetch() {
        let (source, cache) = cache(false);
        let lookups: Vec<_> = (0..40)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.keys("https://c.example/jwks", 1000, false).await.is_ok() })
            })
            .collect();
        for lookup in lookups {
            assert!(lookup.await.unwrap_or(false));
        }
        assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failure_is_remembered_until_a_refetch_is_allowed() {
        let (source, cache) = cache(true);
        let uri = "https://c.example/jwks";
        assert!(cache.keys(uri, 1000, false).await.is_err());
        assert!(cache.keys(uri, 1000 + REFETCH_AFTER - 1, true).await.is_err());
        assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
        assert!(cache.keys(uri, 1000 + REFETCH_AFTER, false).await.is_err());
        assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_forced_refetch_waits_for_the_refetch_interval() {
        let (source, cache) = cache(false);
        let uri = "https://c.example/jwks";
        assert!(cache.keys(uri, 1000, false).await.is_ok());
        assert!(cache.keys(uri, 1010, true).await.is_ok());
        assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
        assert!(cache.keys(uri, 1000 + REFETCH_AFTER, true).await.is_ok());
        assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
    }
}
