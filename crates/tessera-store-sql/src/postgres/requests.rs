//! The table behind every typed flow store (pushed requests, interactions, the device
//! and CIBA indexes, second steps, passkey ceremonies) on PostgreSQL: a JSONB document
//! per key, consumed by one `DELETE … RETURNING`.

use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::store::{RequestStore, StoreResult};

use super::PgStore;
use super::rows::{at, from_json, get, json};
use super::settle::Table;
use crate::store_error;

#[async_trait]
impl RequestStore for PgStore {
    async fn put_request(
        &self,
        key: &str,
        document: &serde_json::Value,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO pending_requests (key, document, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET document = excluded.document, expires_at = excluded.expires_at",
        )
        .bind(key)
        .bind(json(document))
        .bind(at(expires_at))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn request(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>> {
        let row = sqlx::query("SELECT document FROM pending_requests WHERE key = $1 AND expires_at > $2")
            .bind(key)
            .bind(at(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.map(|row| from_json(&row, "document")).transpose()
    }

    async fn consume_request(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>> {
        // RFC 9126 §2.2: single use. Of racing deletes only one gets the row back. An
        // explicit transaction, so that a failed `COMMIT` is told apart from a failed
        // delete and can be settled (a device or CIBA redemption, a PAR request used).
        let mut lease = self.pool.lease().await.map_err(store_error)?;
        let mut tx = lease.begin().await.map_err(store_error)?;
        let row =
            sqlx::query("DELETE FROM pending_requests WHERE key = $1 AND expires_at > $2 RETURNING document")
                .bind(key)
                .bind(at(now))
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        let document: serde_json::Value = from_json(&row, "document")?;
        if let Err(error) = tx.commit().await {
            return self.settle_consumption(Table::Requests, key, document, error).await;
        }
        Ok(Some(document))
    }

    async fn requests_with_prefix(
        &self,
        prefix: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<(String, serde_json::Value)>> {
        let pattern = crate::backend::like_prefix(prefix);
        let rows = sqlx::query(
            "SELECT key, document FROM pending_requests WHERE key LIKE $1 ESCAPE '\\' AND expires_at > $2 ORDER BY key",
        )
        .bind(pattern)
        .bind(at(now))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(|row| Ok((get(row, "key")?, from_json(row, "document")?))).collect()
    }
}
