//! The pending-requests table behind every flow store on SQLite.

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, params};
use tessera_core::Timestamp;
use tessera_core::store::{RequestStore, StoreResult};

use super::{SqliteStore, from_json, from_json_opt, to_json};

#[async_trait]
impl RequestStore for SqliteStore {
    async fn put_request(
        &self,
        key: &str,
        document: &serde_json::Value,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let (key, document) = (key.to_owned(), to_json(document)?);
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO pending_requests (key, document, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (key) DO UPDATE SET document = excluded.document, expires_at = excluded.expires_at",
            )?
            .execute(params![key, document, expires_at])?;
            Ok(())
        })
        .await
    }

    async fn request(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>> {
        let document = self.read(|c| {
            c.prepare_cached("SELECT document FROM pending_requests WHERE key = ?1 AND expires_at > ?2")?
                .query_row(params![key, now], |row| row.get(0))
                .optional()
        })?;
        from_json_opt(document)
    }

    async fn consume_request(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>> {
        // RFC 9126 §2.2: single use. Of racing deletes only one gets the row back.
        let key = key.to_owned();
        let document = self
            .write(move |c| {
                Ok(c.prepare_cached(
                    "DELETE FROM pending_requests WHERE key = ?1 AND expires_at > ?2 RETURNING document",
                )?
                .query_row(params![key, now], |row| row.get(0))
                .optional()?)
            })
            .await?;
        from_json_opt(document)
    }

    async fn requests_with_prefix(
        &self,
        prefix: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<(String, serde_json::Value)>> {
        let pattern = crate::backend::like_prefix(prefix);
        let rows: Vec<(String, String)> = self.read(|c| {
            c.prepare_cached(
                "SELECT key, document FROM pending_requests WHERE key LIKE ?1 ESCAPE '\\' AND expires_at > ?2 \
                 ORDER BY key",
            )?
            .query_map(params![pattern, now], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect()
        })?;
        rows.into_iter().map(|(key, document)| Ok((key, from_json(&document)?))).collect()
    }
}
