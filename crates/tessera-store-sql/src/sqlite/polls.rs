//! Poll pacing on SQLite: one upsert in the writer's transaction.

use async_trait::async_trait;
use rusqlite::params;
use tessera_core::Timestamp;
use tessera_core::store::{Paced, PollStore, StoreResult};

use super::SqliteStore;
use crate::backend::{PACE_POLL, sqlite_placeholders};

#[async_trait]
impl PollStore for SqliteStore {
    async fn pace_poll(
        &self,
        key: &str,
        now: Timestamp,
        interval: i64,
        step: i64,
        expires_at: Timestamp,
    ) -> StoreResult<Paced> {
        let key = key.to_owned();
        self.write_one(move |c| {
            let statement = sqlite_placeholders(PACE_POLL);
            let (slowed, interval) = c
                .prepare_cached(&statement)?
                .query_row(params![key, now, interval, step, expires_at], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
                })?;
            Ok(Paced { too_soon: slowed != 0, interval })
        })
        .await
    }
}
