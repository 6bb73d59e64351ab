//! Poll pacing on PostgreSQL: one upsert, the conflicting row locked.

use async_trait::async_trait;
use sqlx::Row as _;
use tessera_core::Timestamp;
use tessera_core::store::{Paced, PollStore, StoreResult};

use super::PgStore;
use crate::backend::PACE_POLL;
use crate::store_error;

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
            .bind(now)
            .bind(interval)
            .bind(step)
            .bind(expires_at)
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        let slowed: i64 = row.try_get("slowed").map_err(store_error)?;
        let interval: i64 = row.try_get("poll_interval").map_err(store_error)?;
        Ok(Paced { too_soon: slowed != 0, interval })
    }
}
