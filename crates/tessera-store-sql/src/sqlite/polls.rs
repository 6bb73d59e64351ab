//! Poll pacing on SQLite: one upsert in the writer's transaction.

use async_trait::async_trait;
use rusqlite::params;
use tessera_core::Timestamp;
use tessera_core::store::{Paced, PollStore, StoreResult};

use super::SqliteStore;

/// One poll's pace (RFC 8628 §3.5): the conflict's `SET` reads the old row, so
/// `slowed` says whether this poll came sooner than the interval, and only one of
/// racing polls finds the interval passed.
const PACE_POLL: &str = "INSERT INTO poll_pace (key, last_poll, poll_interval, slowed, expires_at) \
     VALUES (?1, ?2, ?3, 0, ?5) ON CONFLICT (key) DO UPDATE SET \
     slowed = CASE WHEN ?2 - poll_pace.last_poll < poll_pace.poll_interval THEN 1 ELSE 0 END, \
     poll_interval = CASE WHEN ?2 - poll_pace.last_poll < poll_pace.poll_interval \
     THEN poll_pace.poll_interval + ?4 ELSE poll_pace.poll_interval END, \
     last_poll = ?2, expires_at = ?5 \
     RETURNING slowed, poll_interval";

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
            let (slowed, interval) = c
                .prepare_cached(PACE_POLL)?
                .query_row(params![key, now, interval, step, expires_at], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
                })?;
            Ok(Paced { too_soon: slowed != 0, interval })
        })
        .await
    }
}
