//! Signing keys and shared secrets on PostgreSQL: the first insert wins, so every
//! instance ends up with the same ones.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use tessera_core::store::{KeyStore, SecretStore, StoreResult, StoredKey};

use super::PgStore;
use super::rows::{at, get, seconds};
use crate::store_error;

fn key_from_row(row: &PgRow) -> StoreResult<StoredKey> {
    Ok(StoredKey {
        generation: get(row, "generation")?,
        kid: get(row, "kid")?,
        algorithm: get(row, "algorithm")?,
        private_key: get(row, "private_key")?,
        sealed: get(row, "sealed")?,
        created_at: seconds(row, "created_at")?,
        activates_at: seconds(row, "activates_at")?,
        retires_at: seconds(row, "retires_at")?,
        expires_at: seconds(row, "expires_at")?,
    })
}

#[async_trait]
impl KeyStore for PgStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows = sqlx::query(
            "SELECT generation, kid, algorithm, private_key, sealed, created_at, activates_at, retires_at, \
             expires_at FROM signing_keys ORDER BY generation",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<bool> {
        // The unique generation decides which instance's "next key" exists.
        let result = sqlx::query(
            "INSERT INTO signing_keys (generation, kid, algorithm, private_key, sealed, created_at, \
             activates_at, retires_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT DO NOTHING",
        )
        .bind(key.generation)
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(key.private_key.as_slice())
        .bind(key.sealed)
        .bind(at(key.created_at))
        .bind(at(key.activates_at))
        .bind(at(key.retires_at))
        .bind(at(key.expires_at))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(result.rows_affected() == 1)
    }
}

#[async_trait]
impl SecretStore for PgStore {
    async fn shared_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        // The first insert wins; every instance then reads the winner.
        sqlx::query("INSERT INTO shared_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(candidate)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        let row = sqlx::query("SELECT value FROM shared_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        get(&row, "value")
    }
}
