//! Polls on PostgreSQL: paced by one upsert (the conflicting row locked), and a whole
//! poll (find, pace, take) in one transaction that holds the request's row.

use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::store::{PollRules, PollStore, Polled, StoreResult, is_decided, unpaced_answer};

use super::PgStore;
use super::rows::{at, from_json, get, seconds};
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
    async fn poll(&self, key: &str, now: Timestamp, rules: &PollRules) -> StoreResult<Polled> {
        let mut lease = self.pool.lease().await.map_err(store_error)?;
        let mut tx = lease.begin().await.map_err(store_error)?;
        // The request's row is held to the end: racing polls on any instance queue
        // here, and the one after a take finds no row.
        let row = sqlx::query(
            "SELECT document, expires_at FROM pending_requests WHERE key = $1 AND expires_at > $2 FOR UPDATE",
        )
        .bind(key)
        .bind(at(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        let Some(row) = row else { return Ok(Polled::Missing) };
        let document: serde_json::Value = from_json(&row, "document")?;
        if let Some(answer) = unpaced_answer(&document, seconds(&row, "expires_at")?, now, rules) {
            return Ok(answer);
        }
        let paced = sqlx::query(PACE_POLL)
            .bind(key)
            .bind(at(now))
            .bind(rules.interval)
            .bind(rules.step)
            .bind(at(rules.pace_until))
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
        let (slowed, interval): (bool, i64) = (get(&paced, "slowed")?, get(&paced, "poll_interval")?);
        if slowed || !is_decided(&document, rules) {
            tx.commit().await.map_err(store_error)?;
            return Ok(if slowed { Polled::TooSoon { interval } } else { Polled::Waiting(document) });
        }
        sqlx::query("DELETE FROM pending_requests WHERE key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        if let Err(error) = tx.commit().await {
            // Taken exactly when the row is gone (this poll held it until its commit).
            return match self.settle_consumption(key, document.clone(), error).await {
                Ok(_) => Ok(Polled::Taken(document)),
                Err(error) if error.is_in_doubt() => Ok(Polled::InDoubt(document)),
                Err(error) => Err(error),
            };
        }
        Ok(Polled::Taken(document))
    }
}
