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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, Ordering};

    use async_trait::async_trait;

    use super::{ClientRegistry, OUTAGE_GRACE};
    use crate::Timestamp;
    use crate::model::{Client, ClientId};
    use crate::store::memory::MemoryStore;
    use crate::store::{ClientStore, Source, StoreError, StoreResult};
    use crate::test_support::service_client;

    const TTL: i64 = 30;

    /// The memory store's clients, reached through a link that can go down: unreachable
    /// (as a refused connection) or failing (as a broken query).
    #[derive(Default)]
    struct Link {
        store: MemoryStore,
        state: AtomicU8,
    }

    const UP: u8 = 0;
    const UNREACHABLE: u8 = 1;
    const FAILING: u8 = 2;

    impl Link {
        fn set(&self, state: u8) {
            self.state.store(state, Ordering::SeqCst);
        }
    }

    #[async_trait]
    impl ClientStore for Link {
        async fn client(&self, client_id: &ClientId) -> StoreResult<Option<Client>> {
            match self.state.load(Ordering::SeqCst) {
                UNREACHABLE => Err(StoreError::unavailable("connection refused")),
                FAILING => Err(StoreError::new("a broken query")),
                _ => self.store.client(client_id).await,
            }
        }
        async fn put_clients(&self, clients: &[Client]) -> StoreResult<()> {
            self.store.put_clients(clients).await
        }
        async fn put_clients_from(&self, source: Source, clients: &[Client]) -> StoreResult<()> {
            self.store.put_clients_from(source, clients).await
        }
        async fn client_sources(&self) -> StoreResult<Vec<(ClientId, Source)>> {
            self.store.client_sources().await
        }
        async fn remove_client(&self, client_id: &ClientId, now: Timestamp) -> StoreResult<bool> {
            self.store.remove_client(client_id, now).await
        }
    }

    fn named(name: &str) -> Client {
        Client { client_name: name.into(), ..service_client("svc", &["api1.read"]) }
    }

    async fn registry_over(link: &Arc<Link>) -> ClientRegistry {
        link.put_clients(&[named("first")]).await.unwrap();
        ClientRegistry::new(link.clone(), TTL)
    }

    async fn name_at(registry: &ClientRegistry, now: Timestamp) -> StoreResult<Option<String>> {
        Ok(registry.get(&ClientId::from("svc"), now).await?.map(|client| client.client_name.clone()))
    }

    #[tokio::test]
    async fn a_change_in_the_store_shows_once_the_cached_client_is_older_than_the_ttl() {
        let link = Arc::new(Link::default());
        let registry = registry_over(&link).await;
        assert_eq!(name_at(&registry, 1_000).await.unwrap().as_deref(), Some("first"));
        link.put_clients(&[named("second")]).await.unwrap();
        assert_eq!(name_at(&registry, 1_000 + TTL - 1).await.unwrap().as_deref(), Some("first"));
        assert_eq!(name_at(&registry, 1_000 + TTL).await.unwrap().as_deref(), Some("second"));
    }

    #[tokio::test]
    async fn this_instance_s_own_change_shows_at_once_after_invalidate() {
        let link = Arc::new(Link::default());
        let registry = registry_over(&link).await;
        name_at(&registry, 1_000).await.unwrap();
        link.put_clients(&[named("second")]).await.unwrap();
        registry.invalidate();
        assert_eq!(name_at(&registry, 1_001).await.unwrap().as_deref(), Some("second"));
    }

    #[tokio::test]
    async fn an_unknown_id_is_not_cached_so_a_client_registered_next_is_found_at_once() {
        let link = Arc::new(Link::default());
        let registry = ClientRegistry::new(link.clone(), TTL);
        assert_eq!(name_at(&registry, 1_000).await.unwrap(), None);
        link.put_clients(&[named("new")]).await.unwrap();
        assert_eq!(name_at(&registry, 1_001).await.unwrap().as_deref(), Some("new"));
    }

    #[tokio::test]
    async fn while_the_store_is_unreachable_a_cached_client_serves_for_a_bounded_while() {
        let link = Arc::new(Link::default());
        let registry = registry_over(&link).await;
        name_at(&registry, 1_000).await.unwrap();
        link.set(UNREACHABLE);
        assert_eq!(name_at(&registry, 1_000 + TTL).await.unwrap().as_deref(), Some("first"));
        let beyond = name_at(&registry, 1_000 + TTL + OUTAGE_GRACE).await.unwrap_err();
        assert!(beyond.is_unavailable(), "past the grace the outage shows");
        // A client never cached has nothing to serve.
        let other = registry.get(&ClientId::from("other"), 1_000 + TTL).await.unwrap_err();
        assert!(other.is_unavailable());
    }

    #[tokio::test]
    async fn a_failing_store_is_not_hidden_by_the_cache() {
        let link = Arc::new(Link::default());
        let registry = registry_over(&link).await;
        name_at(&registry, 1_000).await.unwrap();
        link.set(FAILING);
        let error = name_at(&registry, 1_000 + TTL).await.unwrap_err();
        assert!(!error.is_unavailable(), "only unreachability is bridged");
        link.set(UP);
        assert_eq!(name_at(&registry, 1_000 + TTL + 1).await.unwrap().as_deref(), Some("first"));
    }
}
