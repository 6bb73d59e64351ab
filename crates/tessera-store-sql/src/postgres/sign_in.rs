//! The sign-in stores on PostgreSQL: codes, refresh tokens, grants, sessions, pending
//! requests, consent, throttling and shared secrets.
//!
//! Every check-and-mark is one statement (`UPDATE … RETURNING`, `DELETE … RETURNING`,
//! `INSERT … ON CONFLICT`) or one transaction that starts by taking the row it
//! changes, so racing requests on any number of instances see one winner.

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::any::AnyRow;
use tessera_core::Timestamp;
use tessera_core::secret::SecretHash;
use tessera_core::store::{
    CodeStore, ConsentStore, Consumed, GrantStore, PendingGrant, RefreshRecord, RefreshStore, RequestStore,
    SUCCESSOR_OUTSIDE_FAMILY, SecretStore, Session, SessionStore, StoreError, StoreResult, ThrottleStore,
};

use super::PgStore;
use super::rows::{from_json, to_json};
use crate::store_error;

/// A counter column as the trait's `u32`, saturating (it only guards a threshold).
fn count(row: &AnyRow, column: &str) -> StoreResult<u32> {
    let n: i64 = row.try_get(column).map_err(store_error)?;
    Ok(u32::try_from(n.max(0)).unwrap_or(u32::MAX))
}

#[async_trait]
impl CodeStore for PgStore {
    async fn put_code(
        &self,
        hash: &SecretHash,
        grant: &PendingGrant,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, grant_id, document, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(hash.to_base64url())
        .bind(&grant.grant_id)
        .bind(to_json(grant)?)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn consume_code(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Consumed<PendingGrant>> {
        let code_hash = hash.to_base64url();
        // One statement checks and marks: racing redemptions queue on the row and
        // only the first finds `consumed_at` still NULL (RFC 6749 §4.1.2).
        let fresh = sqlx::query(
            "UPDATE authorization_codes SET consumed_at = $2 \
             WHERE code_hash = $1 AND consumed_at IS NULL AND expires_at > $2 RETURNING document",
        )
        .bind(&code_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        if let Some(row) = fresh {
            return Ok(Consumed::Fresh(from_json(&row, "document")?));
        }
        let used = sqlx::query(
            "SELECT grant_id FROM authorization_codes \
             WHERE code_hash = $1 AND consumed_at IS NOT NULL AND expires_at > $2",
        )
        .bind(&code_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        match used {
            Some(row) => Ok(Consumed::Replayed { grant_id: row.try_get("grant_id").map_err(store_error)? }),
            None => Ok(Consumed::Missing),
        }
    }

    async fn redeem_code(
        &self,
        hash: &SecretHash,
        presented: &tessera_core::store::CodePresentation,
        now: Timestamp,
    ) -> StoreResult<Result<Consumed<PendingGrant>, tessera_core::store::CodeMismatch>> {
        let code_hash = hash.to_base64url();
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        // Takes the row first: a racing redemption waits for this transaction, then
        // finds `consumed_at` set. A request that does not match leaves it unset.
        let row = sqlx::query(
            "SELECT grant_id, document, consumed_at FROM authorization_codes \
             WHERE code_hash = $1 AND expires_at > $2 FOR UPDATE",
        )
        .bind(&code_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        let Some(row) = row else { return Ok(Ok(Consumed::Missing)) };
        let consumed_at: Option<i64> = row.try_get("consumed_at").map_err(store_error)?;
        if consumed_at.is_some() {
            return Ok(Ok(Consumed::Replayed { grant_id: row.try_get("grant_id").map_err(store_error)? }));
        }
        let grant: PendingGrant = from_json(&row, "document")?;
        if let Some(mismatch) = grant.mismatch(presented) {
            return Ok(Err(mismatch));
        }
        sqlx::query("UPDATE authorization_codes SET consumed_at = $2 WHERE code_hash = $1")
            .bind(&code_hash)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        if let Err(error) = tx.commit().await {
            return self.settle_redemption(&code_hash, now, grant, error).await;
        }
        Ok(Ok(Consumed::Fresh(grant)))
    }

    async fn redeemed_code(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<PendingGrant>> {
        let row = sqlx::query(
            "SELECT document FROM authorization_codes \
             WHERE code_hash = $1 AND consumed_at IS NOT NULL AND expires_at > $2",
        )
        .bind(hash.to_base64url())
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.map(|row| from_json(&row, "document")).transpose()
    }
}

/// `Replayed` for a token that exists but is used or of a revoked grant; `Missing`
/// for one that does not exist (or only expired). Read after a failed rotation, and
/// by `refresh_token`.
const REFRESH_STATE: &str = "SELECT t.grant_id, t.document, t.used_at, g.grant_id AS revoked_grant \
     FROM refresh_tokens t LEFT JOIN revoked_grants g ON g.grant_id = t.grant_id WHERE t.token_hash = $1";

/// A refresh token row read with [`REFRESH_STATE`].
struct RefreshState {
    grant_id: String,
    /// Used, or its grant revoked.
    spent: bool,
    row: AnyRow,
}

impl RefreshState {
    fn from_row(row: AnyRow) -> StoreResult<Self> {
        let used_at: Option<i64> = row.try_get("used_at").map_err(store_error)?;
        let revoked_grant: Option<String> = row.try_get("revoked_grant").map_err(store_error)?;
        Ok(Self {
            grant_id: row.try_get("grant_id").map_err(store_error)?,
            spent: used_at.is_some() || revoked_grant.is_some(),
            row,
        })
    }
}

#[async_trait]
impl RefreshStore for PgStore {
    async fn put_refresh_token(&self, hash: &SecretHash, record: &RefreshRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        // Ordered with `revoke_grant` of the same grant, which reads this token's
        // expiry once it is committed.
        lock_grant(&mut tx, &record.grant_id).await?;
        insert_refresh_token(&mut *tx, hash, record, true).await?;
        // The grant may have been revoked before this token was stored (its code
        // replayed while the first redemption was issuing): remember the revocation
        // for as long as this token lives.
        sqlx::query("UPDATE revoked_grants SET expires_at = $2 WHERE grant_id = $1 AND expires_at < $2")
            .bind(&record.grant_id)
            .bind(record.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)
    }

    async fn refresh_token(&self, hash: &SecretHash) -> StoreResult<Consumed<RefreshRecord>> {
        let row = sqlx::query(REFRESH_STATE)
            .bind(hash.to_base64url())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        let Some(state) = row.map(RefreshState::from_row).transpose()? else { return Ok(Consumed::Missing) };
        if state.spent {
            return Ok(Consumed::Replayed { grant_id: state.grant_id });
        }
        Ok(Consumed::Fresh(from_json(&state.row, "document")?))
    }

    async fn rotate_refresh_token(
        &self,
        old: &SecretHash,
        new: &SecretHash,
        successor: &RefreshRecord,
        now: Timestamp,
    ) -> StoreResult<Consumed<()>> {
        let old_hash = old.to_base64url();
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        // The UPDATE takes the old row first: a racing rotation waits for this
        // transaction and then finds `used_at` set, so at most one successor is ever
        // inserted (RFC 9700 §4.14.2). Expired tokens and revoked grants never rotate.
        let used = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $2 \
             WHERE token_hash = $1 AND used_at IS NULL \
             AND expires_at > $2 AND (idle_expires_at IS NULL OR idle_expires_at > $2) \
             AND NOT EXISTS (SELECT 1 FROM revoked_grants g WHERE g.grant_id = refresh_tokens.grant_id) \
             RETURNING grant_id, expires_at",
        )
        .bind(&old_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        let Some(used) = used else {
            let row = sqlx::query(REFRESH_STATE)
                .bind(&old_hash)
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
            tx.rollback().await.map_err(store_error)?;
            return Ok(match row.map(RefreshState::from_row).transpose()? {
                Some(state) if state.spent => Consumed::Replayed { grant_id: state.grant_id },
                _ => Consumed::Missing,
            });
        };
        let grant_id: String = used.try_get("grant_id").map_err(store_error)?;
        let expires_at: Timestamp = used.try_get("expires_at").map_err(store_error)?;
        if grant_id != successor.grant_id || successor.expires_at > expires_at {
            // Dropping `tx` rolls the use of `old` back.
            return Err(StoreError::new(SUCCESSOR_OUTSIDE_FAMILY));
        }
        insert_refresh_token(&mut *tx, new, successor, false).await?;
        if let Err(error) = tx.commit().await {
            return self.settle_rotation(new, error).await;
        }
        Ok(Consumed::Fresh(()))
    }
}

/// Attempts, and the pause between them, to learn whether a rotation whose `COMMIT`
/// went unanswered was made durable.
const SETTLE_ATTEMPTS: u32 = 3;
const SETTLE_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);
/// The most the settling may add to the request, whatever the pool's acquire timeout.
const SETTLE_BUDGET: std::time::Duration = std::time::Duration::from_millis(1500);

impl PgStore {
    /// A rotation's `COMMIT` failed: the server may have made it durable before the
    /// connection went (a crash, a restart, a network cut after the commit record was
    /// flushed). Settle the doubt on another connection from the pool, a few times:
    /// the successor's row exists exactly when the commit happened. Committed: the
    /// rotation succeeded. Absent: it did not, the old token is still fresh, and the
    /// failure is `unavailable`. Unknown (the store stays unreachable): `unavailable`,
    /// and the core lets a retry of the old token be answered from the successor.
    async fn settle_rotation(&self, new: &SecretHash, error: sqlx::Error) -> StoreResult<Consumed<()>> {
        let new_hash = new.to_base64url();
        let settled = tokio::time::timeout(SETTLE_BUDGET, self.committed(&new_hash)).await;
        match settled {
            Ok(Some(true)) => {
                tracing::warn!(%error, "refresh rotation's COMMIT failed but it committed");
                Ok(Consumed::Fresh(()))
            }
            Ok(Some(false)) => {
                tracing::warn!(%error, "refresh rotation's COMMIT failed and it did not commit");
                Err(StoreError::unavailable(error))
            }
            _ => {
                tracing::warn!(%error, "refresh rotation in doubt: its outcome cannot be read now");
                Err(StoreError::unavailable(error))
            }
        }
    }

    /// A code redemption's `COMMIT` failed: as [`Self::settle_rotation`], read on
    /// another connection whether the code is now marked used at this redemption's
    /// time. Marked: the redemption succeeded and the grant is issued. Unmarked: it
    /// did not, the code is still unused, `unavailable`. Unknown: `in_doubt`, and the
    /// core lets one retry of the same redemption through (RFC 6749 §4.1.2 still
    /// revokes on any other reuse).
    async fn settle_redemption(
        &self,
        code_hash: &str,
        now: Timestamp,
        grant: PendingGrant,
        error: sqlx::Error,
    ) -> StoreResult<Result<Consumed<PendingGrant>, tessera_core::store::CodeMismatch>> {
        let settled = tokio::time::timeout(SETTLE_BUDGET, self.code_marked(code_hash, now)).await;
        match settled {
            Ok(Some(true)) => {
                tracing::warn!(%error, "code redemption's COMMIT failed but it committed");
                Ok(Ok(Consumed::Fresh(grant)))
            }
            Ok(Some(false)) => {
                tracing::warn!(%error, "code redemption's COMMIT failed and it did not commit");
                Err(StoreError::unavailable(error))
            }
            _ => {
                tracing::warn!(%error, "code redemption in doubt: its outcome cannot be read now");
                Err(StoreError::in_doubt(error))
            }
        }
    }

    /// Whether the code `code_hash` is marked used at `now` (by the redemption being
    /// settled: it held the row until its commit); `None` when no attempt could tell.
    async fn code_marked(&self, code_hash: &str, now: Timestamp) -> Option<bool> {
        for attempt in 1..=SETTLE_ATTEMPTS {
            let found = sqlx::query("SELECT consumed_at FROM authorization_codes WHERE code_hash = $1")
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await;
            match found {
                Ok(row) => {
                    let consumed_at =
                        row.and_then(|row| row.try_get::<Option<i64>, _>("consumed_at").ok().flatten());
                    return Some(consumed_at == Some(now));
                }
                Err(error) => tracing::debug!(%error, attempt, "code redemption's outcome not readable yet"),
            }
            if attempt < SETTLE_ATTEMPTS {
                tokio::time::sleep(SETTLE_PAUSE).await;
            }
        }
        None
    }

    /// A consumption's `COMMIT` failed: read on another connection whether the row is
    /// gone. Gone: this delete committed (it held the row until its commit, so no
    /// other could take it first) and the document is answered. Still there: it did
    /// not, `unavailable`, and a retry finds the request unused. Unknown: `in_doubt`.
    async fn settle_consumption(
        &self,
        key: &str,
        document: serde_json::Value,
        error: sqlx::Error,
    ) -> StoreResult<Option<serde_json::Value>> {
        let settled = tokio::time::timeout(SETTLE_BUDGET, self.request_row_gone(key)).await;
        match settled {
            Ok(Some(true)) => {
                tracing::warn!(%error, "request consumption's COMMIT failed but it committed");
                Ok(Some(document))
            }
            Ok(Some(false)) => {
                tracing::warn!(%error, "request consumption's COMMIT failed and it did not commit");
                Err(StoreError::unavailable(error))
            }
            _ => {
                tracing::warn!(%error, "request consumption in doubt: its outcome cannot be read now");
                Err(StoreError::in_doubt(error))
            }
        }
    }

    /// Whether the pending request `key` is gone; `None` when no attempt could tell.
    async fn request_row_gone(&self, key: &str) -> Option<bool> {
        for attempt in 1..=SETTLE_ATTEMPTS {
            let found = sqlx::query("SELECT 1 AS found FROM pending_requests WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await;
            match found {
                Ok(row) => return Some(row.is_none()),
                Err(error) => {
                    tracing::debug!(%error, attempt, "request consumption's outcome not readable yet")
                }
            }
            if attempt < SETTLE_ATTEMPTS {
                tokio::time::sleep(SETTLE_PAUSE).await;
            }
        }
        None
    }

    /// Whether the refresh token `new_hash` exists; `None` when no attempt could tell.
    async fn committed(&self, new_hash: &str) -> Option<bool> {
        for attempt in 1..=SETTLE_ATTEMPTS {
            let found = sqlx::query("SELECT 1 AS found FROM refresh_tokens WHERE token_hash = $1")
                .bind(new_hash)
                .fetch_optional(&self.pool)
                .await;
            match found {
                Ok(row) => return Some(row.is_some()),
                Err(error) => tracing::debug!(%error, attempt, "refresh rotation's outcome not readable yet"),
            }
            if attempt < SETTLE_ATTEMPTS {
                tokio::time::sleep(SETTLE_PAUSE).await;
            }
        }
        None
    }
}

/// Stores a refresh token; `starts_family` for the first one of its grant, the only
/// one indexed by grant (migration 0004).
async fn insert_refresh_token<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    hash: &SecretHash,
    record: &RefreshRecord,
    starts_family: bool,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens \
         (token_hash, grant_id, document, expires_at, idle_expires_at, starts_family) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(hash.to_base64url())
    .bind(&record.grant_id)
    .bind(to_json(record)?)
    .bind(record.expires_at)
    .bind(record.idle_expires_at)
    .bind(i64::from(starts_family))
    .execute(executor)
    .await
    .map_err(store_error)?;
    Ok(())
}

/// Holds a transaction-scoped advisory lock on `grant_id` until `tx` ends: orders the
/// revocation of a grant with the storing of its first refresh token, which under
/// READ COMMITTED could otherwise each miss the other's uncommitted row.
async fn lock_grant(tx: &mut sqlx::Transaction<'_, sqlx::Any>, grant_id: &str) -> StoreResult<()> {
    sqlx::query("SELECT 1 FROM pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(grant_id)
        .execute(&mut **tx)
        .await
        .map_err(store_error)?;
    Ok(())
}

#[async_trait]
impl GrantStore for PgStore {
    async fn revoke_grant(
        &self,
        grant_id: &str,
        now: Timestamp,
        remember_until: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        // Waits for a first refresh token of this grant being stored, so it is seen.
        lock_grant(&mut tx, grant_id).await?;
        // RFC 9700 §4.14.2: the whole family, and nothing of other grants. The row
        // refuses every refresh token of the grant, so it is kept as long as its
        // access tokens may live and until the last stored artefact of the family
        // expires: its codes, and the refresh token that started it, whose expiry
        // every later one shares (the only one indexed by grant).
        sqlx::query(
            "INSERT INTO revoked_grants (grant_id, expires_at) SELECT $1, MAX(until) FROM ( \
             SELECT $3 AS until \
             UNION ALL SELECT expires_at FROM refresh_tokens WHERE grant_id = $1 AND starts_family = 1 \
             UNION ALL SELECT expires_at FROM authorization_codes WHERE grant_id = $1) AS family WHERE true \
             ON CONFLICT (grant_id) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE revoked_grants.expires_at < excluded.expires_at",
        )
        .bind(grant_id)
        .bind(now)
        .bind(remember_until)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        // Unused codes become used: a later redemption is refused as a replay.
        sqlx::query(
            "UPDATE authorization_codes SET consumed_at = $2 WHERE grant_id = $1 AND consumed_at IS NULL",
        )
        .bind(grant_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(())
    }
}

#[async_trait]
impl SessionStore for PgStore {
    async fn put_session(&self, hash: &SecretHash, session: &Session) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (session_hash, document, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (session_hash) DO UPDATE SET document = excluded.document, \
             expires_at = excluded.expires_at",
        )
        .bind(hash.to_base64url())
        .bind(to_json(session)?)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn session(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<Session>> {
        let row = sqlx::query("SELECT document FROM sessions WHERE session_hash = $1 AND expires_at > $2")
            .bind(hash.to_base64url())
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.map(|row| from_json(&row, "document")).transpose()
    }

    async fn delete_session(&self, hash: &SecretHash) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE session_hash = $1")
            .bind(hash.to_base64url())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn sessions_of(&self, subject: &str, now: Timestamp) -> StoreResult<Vec<Session>> {
        let rows = sqlx::query(
            "SELECT document FROM sessions WHERE document::jsonb ->> 'subject' = $1 AND expires_at > $2",
        )
        .bind(subject)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        let mut sessions =
            rows.iter().map(|row| from_json::<Session>(row, "document")).collect::<StoreResult<Vec<_>>>()?;
        sessions.sort_by(|a, b| (a.auth_time, &a.sid).cmp(&(b.auth_time, &b.sid)));
        Ok(sessions)
    }

    async fn end_session_of(&self, subject: &str, sid: &str) -> StoreResult<bool> {
        let ended = sqlx::query(
            "DELETE FROM sessions WHERE document::jsonb ->> 'subject' = $1 AND document::jsonb ->> 'sid' = $2",
        )
        .bind(subject)
        .bind(sid)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(ended.rows_affected() > 0)
    }
}

#[async_trait]
impl RequestStore for PgStore {
    async fn put_request(
        &self,
        key: &str,
        document: &serde_json::Value,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO pending_requests (key, document, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET document = excluded.document, expires_at = excluded.expires_at",
        )
        .bind(key)
        .bind(to_json(document)?)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn request(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>> {
        let row = sqlx::query("SELECT document FROM pending_requests WHERE key = $1 AND expires_at > $2")
            .bind(key)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.map(|row| from_json(&row, "document")).transpose()
    }

    async fn consume_request(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>> {
        // RFC 9126 §2.2: single use. Of racing deletes only one gets the row back. An
        // explicit transaction, so that a failed `COMMIT` is told apart from a failed
        // delete and can be settled (a device or CIBA redemption, a PAR request used).
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let row =
            sqlx::query("DELETE FROM pending_requests WHERE key = $1 AND expires_at > $2 RETURNING document")
                .bind(key)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        let document: serde_json::Value = from_json(&row, "document")?;
        if let Err(error) = tx.commit().await {
            return self.settle_consumption(key, document, error).await;
        }
        Ok(Some(document))
    }

    async fn requests_with_prefix(
        &self,
        prefix: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<(String, serde_json::Value)>> {
        let pattern = crate::backend::like_prefix(prefix);
        let rows = sqlx::query(
            "SELECT key, document FROM pending_requests WHERE key LIKE $1 ESCAPE '\\' AND expires_at > $2 ORDER BY key",
        )
        .bind(pattern)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter()
            .map(|row| Ok((row.try_get("key").map_err(store_error)?, from_json(row, "document")?)))
            .collect()
    }

    async fn swap_request(
        &self,
        key: &str,
        expected: &serde_json::Value,
        replacement: &serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<bool> {
        // One transaction that first takes the row: a racing swap waits for this one
        // and then finds the document changed.
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let row = sqlx::query(
            "SELECT document FROM pending_requests WHERE key = $1 AND expires_at > $2 FOR UPDATE",
        )
        .bind(key)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        let current: Option<serde_json::Value> = row.map(|row| from_json(&row, "document")).transpose()?;
        if current.as_ref() != Some(expected) {
            return Ok(false);
        }
        sqlx::query("UPDATE pending_requests SET document = $2 WHERE key = $1")
            .bind(key)
            .bind(to_json(replacement)?)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(true)
    }
}

#[async_trait]
impl ConsentStore for PgStore {
    async fn consented_scopes(&self, subject: &str, client_id: &str) -> StoreResult<Vec<String>> {
        let row = sqlx::query("SELECT scopes FROM consents WHERE subject = $1 AND client_id = $2")
            .bind(subject)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(row.map(|row| from_json(&row, "scopes")).transpose()?.unwrap_or_default())
    }

    async fn put_consent(&self, subject: &str, client_id: &str, scopes: &[String]) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO consents (subject, client_id, scopes) VALUES ($1, $2, $3) \
             ON CONFLICT (subject, client_id) DO UPDATE SET scopes = excluded.scopes",
        )
        .bind(subject)
        .bind(client_id)
        .bind(to_json(&scopes)?)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }
}

#[async_trait]
impl ThrottleStore for PgStore {
    async fn record_failure(&self, key: &str, now: Timestamp, window: i64) -> StoreResult<u32> {
        // One upsert counts: concurrent failures on many instances each add one. A
        // passed window restarts at 1 (both SETs read the old row).
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
        .bind(now)
        .bind(now.saturating_add(window))
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        count(&row, "failures")
    }

    async fn failures(&self, key: &str, now: Timestamp) -> StoreResult<u32> {
        let row = sqlx::query("SELECT failures FROM login_failures WHERE key = $1 AND window_ends_at > $2")
            .bind(key)
            .bind(now)
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
        .bind(now)
        .bind(now.saturating_add(window))
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

#[async_trait]
impl SecretStore for PgStore {
    async fn shared_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        // The first insert wins; every instance then reads the winner.
        sqlx::query("INSERT INTO shared_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(candidate.to_vec())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        let row = sqlx::query("SELECT value FROM shared_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        row.try_get("value").map_err(store_error)
    }
}
