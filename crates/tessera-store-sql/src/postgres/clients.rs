//! Clients and the resource catalog on PostgreSQL.

use async_trait::async_trait;
use sqlx::Row as _;
use tessera_core::Timestamp;
use tessera_core::catalog::Resources;
use tessera_core::model::{Client, ClientId};
use tessera_core::store::{ClientStore, ResourceStore, Source, StoreResult};

use super::rows::{from_json, json};
use super::{PgStore, grants};
use crate::store_error;

#[async_trait]
impl ClientStore for PgStore {
    async fn client(&self, client_id: &ClientId) -> StoreResult<Option<Client>> {
        let row = sqlx::query("SELECT document FROM clients WHERE client_id = $1")
            .bind(client_id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.map(|row| from_json(&row, "document")).transpose()
    }

    async fn put_clients(&self, clients: &[Client]) -> StoreResult<()> {
        let mut lease = self.pool.lease().await.map_err(store_error)?;
        let mut tx = lease.begin().await.map_err(store_error)?;
        for client in clients {
            sqlx::query(
                "INSERT INTO clients (client_id, document) VALUES ($1, $2) \
                 ON CONFLICT (client_id) DO UPDATE SET document = excluded.document",
            )
            .bind(client.client_id.as_str())
            .bind(json(client))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)
    }

    async fn put_clients_from(&self, source: Source, clients: &[Client]) -> StoreResult<()> {
        let mut lease = self.pool.lease().await.map_err(store_error)?;
        let mut tx = lease.begin().await.map_err(store_error)?;
        for client in clients {
            sqlx::query(
                "INSERT INTO clients (client_id, document, source) VALUES ($1, $2, $3) \
                 ON CONFLICT (client_id) DO UPDATE SET document = excluded.document, source = excluded.source",
            )
            .bind(client.client_id.as_str())
            .bind(json(client))
            .bind(source.as_str())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)
    }

    async fn client_sources(&self) -> StoreResult<Vec<(ClientId, Source)>> {
        let rows = sqlx::query("SELECT client_id, source FROM clients ORDER BY client_id")
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("client_id").map_err(store_error)?;
                let source: String = row.try_get("source").map_err(store_error)?;
                Ok((ClientId(id), Source::parse(&source)?))
            })
            .collect()
    }

    async fn remove_client(&self, client_id: &ClientId, now: Timestamp) -> StoreResult<bool> {
        let mut lease = self.pool.lease().await.map_err(store_error)?;
        let mut tx = lease.begin().await.map_err(store_error)?;
        let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?
            .rows_affected();
        grants::revoke_grants_where(&mut tx, "client_id", client_id.as_str(), now).await?;
        sqlx::query("DELETE FROM consents WHERE client_id = $1")
            .bind(client_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(deleted > 0)
    }
}

#[async_trait]
impl ResourceStore for PgStore {
    async fn put_resources(&self, resources: &Resources) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO resources (id, document) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET document = excluded.document",
        )
        .bind(json(resources))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn resources(&self) -> StoreResult<Resources> {
        let row = sqlx::query("SELECT document FROM resources WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(row.map(|row| from_json(&row, "document")).transpose()?.unwrap_or_default())
    }
}
