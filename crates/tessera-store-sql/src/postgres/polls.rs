//! Device and CIBA requests on PostgreSQL (`decoupled_requests`): decided by one
//! conditional statement on their state, polls paced by one upsert (the conflicting
//! row locked), and a whole poll (find, pace, take) in one transaction that holds the
//! request's row.

use async_trait::async_trait;
use sqlx::types::Json;
use tessera_core::Timestamp;
use tessera_core::store::{PENDING, PollRules, PollStore, Polled, StoreResult, is_decided, unpaced_answer};

use super::PgStore;
use super::rows::{at, from_json, get, json, seconds};
use super::settle::Table;
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
    async fn put_polled(
        &self,
        key: &str,
        state: &str,
        document: &serde_json::Value,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO decoupled_requests (key, state, document, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET state = excluded.state, document = excluded.document, \
             expires_at = excluded.expires_at",
        )
        .bind(key)
        .bind(state)
        .bind(json(document))
        .bind(at(expires_at))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn polled(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>> {
        let row = sqlx::query("SELECT document FROM decoupled_requests WHERE key = $1 AND expires_at > $2")
            .bind(key)
            .bind(at(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.map(|row| from_json(&row, "document")).transpose()
    }

    async fn decide_polled(
        &self,
        key: &str,
        state: &str,
        document: &serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<bool> {
        // One conditional statement: racing decisions queue on the row, and each after
        // the first finds it no longer pending.
        let decided = sqlx::query(
            "UPDATE decoupled_requests SET state = $2, document = $3 \
             WHERE key = $1 AND state = $4 AND expires_at > $5",
        )
        .bind(key)
        .bind(state)
        .bind(Json(document))
        .bind(PENDING)
        .bind(at(now))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(decided.rows_affected() == 1)
    }

    async fn poll(&self, key: &str, now: Timestamp, rules: &PollRules) -> StoreResult<Polled> {
        let mut lease = self.pool.lease().await.map_err(store_error)?;
        let mut tx = lease.begin().await.map_err(store_error)?;
        // The request's row is held to the end: racing polls on any instance queue
        // here, and the one after a take finds no row.
        let row = sqlx::query(
            "SELECT state, document, expires_at FROM decoupled_requests WHERE key = $1 AND expires_at > $2 \
             FOR UPDATE",
        )
        .bind(key)
        .bind(at(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        let Some(row) = row else { return Ok(Polled::Missing) };
        let state: String = get(&row, "state")?;
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
        if slowed || !is_decided(&state, rules) {
            tx.commit().await.map_err(store_error)?;
            return Ok(if slowed { Polled::TooSoon { interval } } else { Polled::Waiting(document) });
        }
        sqlx::query("DELETE FROM decoupled_requests WHERE key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        if let Err(error) = tx.commit().await {
            // Taken exactly when the row is gone (this poll held it until its commit).
            return match self.settle_consumption(Table::DecoupledRequests, key, document.clone(), error).await
            {
                Ok(_) => Ok(Polled::Taken(document)),
                Err(error) if error.is_in_doubt() => Ok(Polled::InDoubt(document)),
                Err(error) => Err(error),
            };
        }
        Ok(Polled::Taken(document))
    }
}
