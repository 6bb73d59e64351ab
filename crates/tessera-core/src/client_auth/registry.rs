//! Clients read through a short-lived cache: the token endpoint's hot path does not
//! touch the store, and a change made by another instance shows within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::Timestamp;
use crate::model::{Client, ClientId};
use crate::store::{ClientStore, StoreResult};

/// Entries beyond which the cache starts over (bounded memory).
const MAX_ENTRIES: usize = 10_000;
/// How long past its TTL a cached client still serves while the store is unreachable.
const OUTAGE_GRACE: i64 = 300;

/// The client cache.
pub struct ClientRegistry {
    store: Arc<dyn ClientStore>,
    ttl: i64,
    entries: RwLock<HashMap<ClientId, (Timestamp, Arc<Client>)>>,
    /// URL `client_id`s, resolved from their metadata documents instead of the store.
    documents: Option<crate::metadata_documents::MetadataDocuments>,
}

impl ClientRegistry {
    /// A cache over `store`, keeping each client `ttl` seconds.
    pub fn new(store: Arc<dyn ClientStore>, ttl: i64) -> Self {
        Self { store, ttl, entries: RwLock::new(HashMap::new()), documents: None }
    }

    /// Resolves URL `client_id`s through `documents` (when they are enabled).
    #[must_use]
    pub fn with_documents(mut self, documents: crate::metadata_documents::MetadataDocuments) -> Self {
        self.documents = Some(documents);
        self
    }

    /// The client, from the cache when fresh. Unknown ids are not cached, so a flood
    /// of made-up ids cannot grow memory.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn get(&self, client_id: &ClientId, now: Timestamp) -> StoreResult<Option<Arc<Client>>> {
        if let Some(documents) = &self.documents
            && let Some(url) = documents.handles(client_id)
        {
            return Ok(documents.client(&url, now).await);
        }
        let stale = {
            let entries = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            match entries.get(client_id) {
                Some((fetched_at, client)) if now - fetched_at < self.ttl => return Ok(Some(client.clone())),
                Some((fetched_at, client)) if now - fetched_at < self.ttl + OUTAGE_GRACE => {
                    Some(client.clone())
                }
                _ => None,
            }
        };
        let client = match self.store.client(client_id).await {
            Ok(client) => client.map(Arc::new),
            // While the store is unreachable nobody can change the client in it either:
            // the entry last read stays as good as it was, for a bounded while.
            Err(error) if error.is_unavailable() && stale.is_some() => {
                tracing::warn!(%client_id, %error, "store unavailable; serving the cached client");
                return Ok(stale);
            }
            Err(error) => return Err(error),
        };
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &client {
            Some(client) => {
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
                entries.insert(client_id.clone(), (now, client.clone()));
            }
            None => {
                entries.remove(client_id);
            }
        }
        Ok(client)
    }

    /// Forgets every cached client (after this instance changed the store).
    pub fn invalidate(&self) {
        self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}
