//! Sign-in failure and attempt counters on SQLite: each count is one upsert.

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, params};
use tessera_core::Timestamp;
use tessera_core::store::{StoreResult, ThrottleStore};

use super::{SqliteStore, count};

#[async_trait]
impl ThrottleStore for SqliteStore {
    async fn record_failure(&self, key: &str, now: Timestamp, window: i64) -> StoreResult<u32> {
        // One upsert counts: concurrent failures in many processes each add one. A
        // passed window restarts at 1 (both SETs read the old row).
        let key = key.to_owned();
        let failures = self
            .write(move |c| {
                Ok(c.prepare_cached(
                    "INSERT INTO login_failures (key, failures, window_ends_at) VALUES (?1, 1, ?3) \
                 ON CONFLICT (key) DO UPDATE SET \
                 failures = CASE WHEN login_failures.window_ends_at <= ?2 THEN 1 \
                 ELSE login_failures.failures + 1 END, \
                 window_ends_at = CASE WHEN login_failures.window_ends_at <= ?2 THEN ?3 \
                 ELSE login_failures.window_ends_at END \
                 RETURNING failures",
                )?
                .query_row(params![key, now, now.saturating_add(window)], |row| row.get(0))?)
            })
            .await?;
        Ok(count(failures))
    }

    async fn failures(&self, key: &str, now: Timestamp) -> StoreResult<u32> {
        let failures = self.read(|c| {
            c.prepare_cached("SELECT failures FROM login_failures WHERE key = ?1 AND window_ends_at > ?2")?
                .query_row(params![key, now], |row| row.get(0))
                .optional()
        })?;
        Ok(failures.map_or(0, count))
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM login_failures WHERE key = ?1")?.execute([key])?;
            Ok(())
        })
        .await
    }

    async fn reserve_attempt(&self, key: &str, limit: u32, now: Timestamp, window: i64) -> StoreResult<bool> {
        // Check and count in one upsert: past the limit the conflict's WHERE is false, no
        // row is written and none returned. A passed window restarts at 1.
        let key = key.to_owned();
        let reserved = self
            .write(move |c| {
                Ok(c.prepare_cached(
                    "INSERT INTO login_failures (key, failures, window_ends_at) VALUES (?1, 1, ?3) \
                     ON CONFLICT (key) DO UPDATE SET \
                     failures = CASE WHEN login_failures.window_ends_at <= ?2 THEN 1 \
                     ELSE login_failures.failures + 1 END, \
                     window_ends_at = CASE WHEN login_failures.window_ends_at <= ?2 THEN ?3 \
                     ELSE login_failures.window_ends_at END \
                     WHERE login_failures.window_ends_at <= ?2 OR login_failures.failures < ?4 \
                     RETURNING failures",
                )?
                .query_row(params![key, now, now.saturating_add(window), limit], |row| row.get::<_, i64>(0))
                .optional()?)
            })
            .await?;
        Ok(reserved.is_some())
    }

    async fn refund_attempt(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE login_failures SET failures = failures - 1 WHERE key = ?1 AND failures > 0",
            )?
            .execute([key])?;
            Ok(())
        })
        .await
    }
}
