//! Failure counting and attempt reservation on PostgreSQL: each is one upsert, so
//! concurrent requests on many instances each count once.

use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::store::{StoreResult, ThrottleStore};

use super::PgStore;
use super::rows::{at, count};
use crate::store_error;

#[async_trait]
impl ThrottleStore for PgStore {
    async fn record_failure(&self, key: &str, now: Timestamp, window: i64) -> StoreResult<u32> {
        // A passed window restarts at 1 (both SETs read the old row).
        let row = sqlx::query(
            "INSERT INTO login_failures (key, failures, window_ends_at) VALUES ($1, 1, $3) \
             ON CONFLICT (key) DO UPDATE SET \
             failures = CASE WHEN login_failures.window_ends_at <= $2 THEN 1 \
             ELSE login_failures.failures + 1 END, \
             window_ends_at = CASE WHEN login_failures.window_ends_at <= $2 THEN $3 \
             ELSE login_failures.window_ends_at END \
             RETURNING failures",
        )
        .bind(key)
        .bind(at(now))
        .bind(at(now.saturating_add(window)))
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        count(&row, "failures")
    }

    async fn failures(&self, key: &str, now: Timestamp) -> StoreResult<u32> {
        let row = sqlx::query("SELECT failures FROM login_failures WHERE key = $1 AND window_ends_at > $2")
            .bind(key)
            .bind(at(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.map_or(Ok(0), |row| count(&row, "failures"))
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn reserve_attempt(&self, key: &str, limit: u32, now: Timestamp, window: i64) -> StoreResult<bool> {
        // Check and count in one upsert (the conflicting row is locked): past the limit
        // the conflict's WHERE is false, nothing is written and no row returned.
        let row = sqlx::query(
            "INSERT INTO login_failures (key, failures, window_ends_at) VALUES ($1, 1, $3) \
             ON CONFLICT (key) DO UPDATE SET \
             failures = CASE WHEN login_failures.window_ends_at <= $2 THEN 1 \
             ELSE login_failures.failures + 1 END, \
             window_ends_at = CASE WHEN login_failures.window_ends_at <= $2 THEN $3 \
             ELSE login_failures.window_ends_at END \
             WHERE login_failures.window_ends_at <= $2 OR login_failures.failures < $4 \
             RETURNING failures",
        )
        .bind(key)
        .bind(at(now))
        .bind(at(now.saturating_add(window)))
        .bind(i64::from(limit))
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(row.is_some())
    }

    async fn refund_attempt(&self, key: &str) -> StoreResult<()> {
        sqlx::query("UPDATE login_failures SET failures = failures - 1 WHERE key = $1 AND failures > 0")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
