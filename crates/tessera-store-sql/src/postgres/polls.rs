//! Poll pacing on PostgreSQL: one upsert, the conflicting row locked.

use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::store::{Paced, PollStore, StoreResult};

use super::PgStore;
use super::rows::{at, get};
use crate::store_error;

/// One poll's pace: the conflict's `SET` reads the old row, so `slowed` says whether
/// this poll came sooner than the interval, and only one of racing polls finds the
/// interval passed (RFC 8628 §3.5).
const PACE_POLL: &str = "INSERT INTO poll_pace (key, last_poll, poll_interval, slowed, expires_at) \
     VALUES ($1, $2, $3, false, $5) ON CONFLICT (key) DO UPDATE SET \
     slowed = $2 < poll_pace.last_poll + poll_pace.poll_interval * interval '1 second', \
     poll_interval = CASE WHEN $2 < poll_pace.last_poll + poll_pace.poll_interval * interval '1 second' \
     THEN poll_pace.poll_interval + $4 ELSE poll_pace.poll_interval END, \
     last_poll = $2, expires_at = $5 \
     RETURNING slowed, poll_interval";

#[async_trait]
impl PollStore for PgStore {
    async fn pace_poll(
        &self,
        key: &str,
        now: Timestamp,
        interval: i64,
        step: i64,
        expires_at: Timestamp,
    ) -> StoreResult<Paced> {
        let row = sqlx::query(PACE_POLL)
            .bind(key)
            .bind(at(now))
            .bind(interval)
            .bind(step)
            .bind(at(expires_at))
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(Paced { too_soon: get(&row, "slowed")?, interval: get(&row, "poll_interval")? })
    }
}
