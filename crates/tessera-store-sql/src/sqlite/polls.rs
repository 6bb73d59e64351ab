//! Device and CIBA requests on SQLite (`decoupled_requests`): decided by one
//! conditional statement on their state, polls paced by one upsert, and a whole poll
//! (find, pace, take) in one of the writer's transactions.

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, params};
use tessera_core::Timestamp;
use tessera_core::store::{PENDING, PollRules, PollStore, Polled, StoreResult, is_decided, unpaced_answer};

use super::writer::WriteError;
use super::{SqliteStore, from_json, from_json_opt, to_json};

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
    async fn put_polled(
        &self,
        key: &str,
        state: &str,
        document: &serde_json::Value,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let (key, state, document) = (key.to_owned(), state.to_owned(), to_json(document)?);
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO decoupled_requests (key, state, document, expires_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (key) DO UPDATE SET state = excluded.state, document = excluded.document, \
                 expires_at = excluded.expires_at",
            )?
            .execute(params![key, state, document, expires_at])?;
            Ok(())
        })
        .await
    }

    async fn polled(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>> {
        let document = self.read(|c| {
            c.prepare_cached("SELECT document FROM decoupled_requests WHERE key = ?1 AND expires_at > ?2")?
                .query_row(params![key, now], |row| row.get(0))
                .optional()
        })?;
        from_json_opt(document)
    }

    async fn decide_polled(
        &self,
        key: &str,
        state: &str,
        document: &serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (key, state, document) = (key.to_owned(), state.to_owned(), to_json(document)?);
        self.write(move |c| {
            let changed = c
                .prepare_cached(
                    "UPDATE decoupled_requests SET state = ?2, document = ?3 \
                     WHERE key = ?1 AND state = ?4 AND expires_at > ?5",
                )?
                .execute(params![key, state, document, PENDING, now])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn poll(&self, key: &str, now: Timestamp, rules: &PollRules) -> StoreResult<Polled> {
        let key = key.to_owned();
        let rules = rules.clone();
        // SQLite has one writer: everything in this closure is one transaction that no
        // other poll, decision or take can interleave with.
        self.write(move |c| {
            let row: Option<(String, String, Timestamp)> = c
                .prepare_cached(
                    "SELECT state, document, expires_at FROM decoupled_requests WHERE key = ?1 AND expires_at > ?2",
                )?
                .query_row(params![key, now], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .optional()?;
            let Some((state, document, row_expires_at)) = row else { return Ok(Polled::Missing) };
            let document: serde_json::Value = from_json(&document).map_err(WriteError::Store)?;
            if let Some(answer) = unpaced_answer(&document, row_expires_at, now, &rules) {
                return Ok(answer);
            }
            let (slowed, interval) = c
                .prepare_cached(PACE_POLL)?
                .query_row(params![key, now, rules.interval, rules.step, rules.pace_until], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
                })?;
            if slowed != 0 {
                return Ok(Polled::TooSoon { interval });
            }
            if !is_decided(&state, &rules) {
                return Ok(Polled::Waiting(document));
            }
            c.prepare_cached("DELETE FROM decoupled_requests WHERE key = ?1")?.execute(params![key])?;
            Ok(Polled::Taken(document))
        })
        .await
    }
}
