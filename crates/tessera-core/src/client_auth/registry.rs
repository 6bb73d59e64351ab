//! Clients read through a short-lived cache: the token endpoint's hot path does not
//! touch the store, and a change made by another instance shows within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::Timestamp;
use crate::model::{Client, ClientId};
use crate::store::{ClientStore, StoreResult};

/// Entries beyond which the cache starts over (bounded memory).
const MAX_ENTRIES: usize = 10_000;

/// The client cache.
pub struct ClientRegistry {
    store: Arc<dyn ClientStore>,
    ttl: i64,
    entries: RwLock<HashMap<ClientId, (Timestamp, Arc<Client>)>>,
}

impl ClientRegistry {
    /// A cache over `store`, keeping each client `ttl` seconds.
    pub fn new(store: Arc<dyn ClientStore>, ttl: i64) -> Self {
        Self { store, ttl, entries: RwLock::new(HashMap::new()) }
    }

    /// The client, from the cache when fresh. Unknown ids are not cached, so a flood
    /// of made-up ids cannot grow memory.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn get(&self, client_id: &ClientId, now: Timestamp) -> StoreResult<Option<Arc<Client>>> {
        {
            let entries = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((fetched_at, client)) = entries.get(client_id)
                && now - fetched_at < self.ttl
            {
                return Ok(Some(client.clone()));
            }
        }
        let client = self.store.client(client_id).await?.map(Arc::new);
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
