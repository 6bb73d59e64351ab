//! Signing keys and shared secrets on SQLite: the first insert wins.

use async_trait::async_trait;
use rusqlite::params;
use tessera_core::store::{KeyStore, SecretStore, StoreResult, StoredKey};

use super::SqliteStore;

#[async_trait]
impl KeyStore for SqliteStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT generation, kid, algorithm, private_key, sealed, created_at, activates_at, retires_at, \
                 expires_at FROM signing_keys ORDER BY generation",
            )?
            .query_map([], |row| {
                Ok(StoredKey {
                    generation: row.get(0)?,
                    kid: row.get(1)?,
                    algorithm: row.get(2)?,
                    private_key: row.get(3)?,
                    sealed: row.get::<_, i64>(4)? != 0,
                    created_at: row.get(5)?,
                    activates_at: row.get(6)?,
                    retires_at: row.get(7)?,
                    expires_at: row.get(8)?,
                })
            })?
            .collect()
        })
    }

    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<bool> {
        // The unique generation decides which instance's "next key" exists.
        let key = key.clone();
        let inserted = self
            .write(move |c| {
                Ok(c.prepare_cached(
                    "INSERT INTO signing_keys (generation, kid, algorithm, private_key, sealed, created_at, \
                 activates_at, retires_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    key.generation,
                    key.kid,
                    key.algorithm,
                    key.private_key,
                    i64::from(key.sealed),
                    key.created_at,
                    key.activates_at,
                    key.retires_at,
                    key.expires_at,
                ])?)
            })
            .await?;
        Ok(inserted == 1)
    }
}

#[async_trait]
impl SecretStore for SqliteStore {
    async fn shared_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        // The first insert wins; every process then reads the winner.
        let (name, candidate) = (name.to_owned(), candidate.to_vec());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO shared_secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            )?
            .execute(params![name, candidate])?;
            Ok(c.prepare_cached("SELECT value FROM shared_secrets WHERE name = ?1")?
                .query_row([name], |row| row.get(0))?)
        })
        .await
    }
}
