//! Registered clients and the catalog of resources they may ask for.

use async_trait::async_trait;

use super::{Source, StoreResult};
use crate::Timestamp;
use crate::catalog::Resources;
use crate::model::{Client, ClientId};

/// Registered clients.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// The client with this id.
    async fn client(&self, client_id: &ClientId) -> StoreResult<Option<Client>>;
    /// Inserts or replaces clients by `client_id`.
    async fn put_clients(&self, clients: &[Client]) -> StoreResult<()>;
    /// Inserts or replaces clients by `client_id`, recording `source` as where each now
    /// comes from (a client [`put_clients`](Self::put_clients) inserts is `Config`).
    async fn put_clients_from(&self, source: Source, clients: &[Client]) -> StoreResult<()>;
    /// Every client's id and source, ordered by id.
    async fn client_sources(&self) -> StoreResult<Vec<(ClientId, Source)>>;
    /// Deletes the client and, in the same step, makes everything issued to it unusable:
    /// the grants of its stored refresh tokens and codes are revoked (as by
    /// `GrantStore::revoke_grant`) and its consents forgotten. `false` when unknown.
    async fn remove_client(&self, client_id: &ClientId, now: Timestamp) -> StoreResult<bool>;
}

/// API scopes, API resources and identity resources.
#[async_trait]
pub trait ResourceStore: Send + Sync {
    /// Replaces the whole set.
    async fn put_resources(&self, resources: &Resources) -> StoreResult<()>;
    /// The stored set (empty when none was stored).
    async fn resources(&self) -> StoreResult<Resources>;
}
