//! Settling a single-use change whose outcome went unanswered: the `COMMIT` (or the
//! one statement) failed, and the server may still have made it durable before the
//! connection went (a crash, a restart, a network cut after the commit record was
//! flushed). Read on another connection from the pool, a few times, whether it
//! happened. Happened: answer as if nothing failed. Did not: `unavailable`, and a
//! retry finds the value unused. Unknown (the store stays unreachable): `in_doubt`,
//! and core lets one retry of the same request through.

use std::time::Duration;

use tessera_core::Timestamp;
use tessera_core::secret::SecretHash;
use tessera_core::store::{CodeMismatch, Consumed, PendingGrant, StoreError, StoreResult};

use super::PgStore;
use super::rows::{at, from_json};

/// Attempts, and the pause between them, to learn the outcome.
const SETTLE_ATTEMPTS: u32 = 3;
const SETTLE_PAUSE: Duration = Duration::from_millis(200);
/// The most the settling may add to the request, whatever the pool's acquire timeout.
const SETTLE_BUDGET: Duration = Duration::from_millis(1500);

impl PgStore {
    /// A refresh rotation: the successor's row exists exactly when it committed.
    /// Unknown is `unavailable` too: core lets a retry of the old token be answered
    /// from the successor.
    pub(super) async fn settle_rotation(
        &self,
        new: &SecretHash,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreResult<Consumed<()>> {
        let new_hash = new.to_base64url();
        let query = || {
            sqlx::query("SELECT 1 AS found FROM refresh_tokens WHERE token_hash = $1")
                .bind(new_hash.clone())
                .fetch_optional(&self.pool)
        };
        match self.outcome("refresh rotation", query).await {
            Some(Some(_)) => {
                tracing::warn!(%error, "refresh rotation's COMMIT failed but it committed");
                Ok(Consumed::Fresh(()))
            }
            Some(None) => {
                tracing::warn!(%error, "refresh rotation's COMMIT failed and it did not commit");
                Err(StoreError::unavailable(error))
            }
            None => {
                tracing::warn!(%error, "refresh rotation in doubt: its outcome cannot be read now");
                Err(StoreError::unavailable(error))
            }
        }
    }

    /// A code redemption: the code is marked used at this redemption's time exactly
    /// when it committed (the redemption held the row until then). `grant` is the
    /// redeemed grant when it was read before the failure; otherwise it is read now.
    pub(super) async fn settle_redemption(
        &self,
        code_hash: &str,
        now: Timestamp,
        grant: Option<PendingGrant>,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreResult<Result<Consumed<PendingGrant>, CodeMismatch>> {
        let query = || {
            sqlx::query("SELECT document FROM authorization_codes WHERE code_hash = $1 AND consumed_at = $2")
                .bind(code_hash)
                .bind(at(now))
                .fetch_optional(&self.pool)
        };
        match self.outcome("code redemption", query).await {
            Some(Some(row)) => {
                let grant = match grant {
                    Some(grant) => grant,
                    None => from_json(&row, "document")?,
                };
                tracing::warn!(%error, "code redemption's COMMIT failed but it committed");
                Ok(Ok(Consumed::Fresh(grant)))
            }
            Some(None) => {
                tracing::warn!(%error, "code redemption's COMMIT failed and it did not commit");
                Err(StoreError::unavailable(error))
            }
            None => {
                tracing::warn!(%error, "code redemption in doubt: its outcome cannot be read now");
                Err(StoreError::in_doubt(error))
            }
        }
    }

    /// A request's consumption from `table` (`pending_requests` or
    /// `decoupled_requests`): the row is gone exactly when this delete committed (it
    /// held the row until its commit, so no other could take it first).
    pub(super) async fn settle_consumption(
        &self,
        table: Table,
        key: &str,
        document: serde_json::Value,
        error: sqlx::Error,
    ) -> StoreResult<Option<serde_json::Value>> {
        let statement = match table {
            Table::Requests => "SELECT 1 AS found FROM pending_requests WHERE key = $1",
            Table::DecoupledRequests => "SELECT 1 AS found FROM decoupled_requests WHERE key = $1",
        };
        let query = || sqlx::query(statement).bind(key).fetch_optional(&self.pool);
        match self.outcome("request consumption", query).await {
            Some(None) => {
                tracing::warn!(%error, "request consumption's COMMIT failed but it committed");
                Ok(Some(document))
            }
            Some(Some(_)) => {
                tracing::warn!(%error, "request consumption's COMMIT failed and it did not commit");
                Err(StoreError::unavailable(error))
            }
            None => {
                tracing::warn!(%error, "request consumption in doubt: its outcome cannot be read now");
                Err(StoreError::in_doubt(error))
            }
        }
    }

    /// Runs `query` until it answers, at most [`SETTLE_ATTEMPTS`] times within
    /// [`SETTLE_BUDGET`]: the row it found, if any; `None` when no attempt could tell.
    async fn outcome<F, Q>(&self, what: &str, query: F) -> Option<Option<sqlx::postgres::PgRow>>
    where
        F: Fn() -> Q,
        Q: Future<Output = Result<Option<sqlx::postgres::PgRow>, sqlx::Error>>,
    {
        let attempts = async {
            for attempt in 1..=SETTLE_ATTEMPTS {
                match query().await {
                    Ok(row) => return Some(row),
                    Err(error) => tracing::debug!(%error, attempt, "{what}'s outcome not readable yet"),
                }
                if attempt < SETTLE_ATTEMPTS {
                    tokio::time::sleep(SETTLE_PAUSE).await;
                }
            }
            None
        };
        tokio::time::timeout(SETTLE_BUDGET, attempts).await.ok().flatten()
    }
}

/// The tables a single-use request is consumed from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Table {
    /// `pending_requests`: the flows' documents.
    Requests,
    /// `decoupled_requests`: device and CIBA requests, redeemed by a poll.
    DecoupledRequests,
}
