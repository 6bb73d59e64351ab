//! Clients and the resource catalog on SQLite.

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, params};
use tessera_core::Timestamp;
use tessera_core::catalog::Resources;
use tessera_core::model::{Client, ClientId};
use tessera_core::store::{ClientStore, ResourceStore, Source, StoreResult};

use super::grants::revoke_grants_where;
use super::{SqliteStore, from_json_opt, to_json};

#[async_trait]
impl ClientStore for SqliteStore {
    async fn client(&self, client_id: &ClientId) -> StoreResult<Option<Client>> {
        let document = self.read(|c| {
            c.prepare_cached("SELECT document FROM clients WHERE client_id = ?1")?
                .query_row([client_id.as_str()], |row| row.get(0))
                .optional()
        })?;
        from_json_opt(document)
    }

    async fn put_clients(&self, clients: &[Client]) -> StoreResult<()> {
        let documents = clients
            .iter()
            .map(|client| Ok((client.client_id.as_str().to_owned(), to_json(client)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        // One savepoint: all of them or none.
        self.write(move |c| {
            let mut insert = c.prepare_cached(
                "INSERT INTO clients (client_id, document) VALUES (?1, ?2) \
                 ON CONFLICT (client_id) DO UPDATE SET document = excluded.document",
            )?;
            for (client_id, document) in &documents {
                insert.execute(params![client_id, document])?;
            }
            Ok(())
        })
        .await
    }

    async fn put_clients_from(&self, source: Source, clients: &[Client]) -> StoreResult<()> {
        let documents = clients
            .iter()
            .map(|client| Ok((client.client_id.as_str().to_owned(), to_json(client)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        self.write(move |c| {
            let mut insert = c.prepare_cached(
                "INSERT INTO clients (client_id, document, source) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (client_id) DO UPDATE SET document = excluded.document, source = excluded.source",
            )?;
            for (client_id, document) in &documents {
                insert.execute(params![client_id, document, source.as_str()])?;
            }
            Ok(())
        })
        .await
    }

    async fn client_sources(&self) -> StoreResult<Vec<(ClientId, Source)>> {
        let rows: Vec<(String, String)> = self.read(|c| {
            c.prepare_cached("SELECT client_id, source FROM clients ORDER BY client_id")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })?;
        rows.into_iter().map(|(id, source)| Ok((ClientId(id), Source::parse(&source)?))).collect()
    }

    async fn remove_client(&self, client_id: &ClientId, now: Timestamp) -> StoreResult<bool> {
        let client_id = client_id.as_str().to_owned();
        self.write(move |tx| {
            revoke_grants_where(tx, "client_id", &client_id, now)?;
            tx.prepare_cached("DELETE FROM consents WHERE client_id = ?1")?.execute([&client_id])?;
            let deleted =
                tx.prepare_cached("DELETE FROM clients WHERE client_id = ?1")?.execute([&client_id])?;
            Ok(deleted > 0)
        })
        .await
    }
}

#[async_trait]
impl ResourceStore for SqliteStore {
    async fn put_resources(&self, resources: &Resources) -> StoreResult<()> {
        let document = to_json(resources)?;
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO resources (id, document) VALUES (1, ?1) \
                 ON CONFLICT (id) DO UPDATE SET document = excluded.document",
            )?
            .execute([&document])?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn resources(&self) -> StoreResult<Resources> {
        let document = self.read(|c| {
            c.prepare_cached("SELECT document FROM resources WHERE id = 1")?
                .query_row([], |row| row.get(0))
                .optional()
        })?;
        Ok(from_json_opt(document)?.unwrap_or_default())
    }
}
