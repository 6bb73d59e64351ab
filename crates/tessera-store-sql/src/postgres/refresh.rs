//! Refresh tokens on PostgreSQL: each rotates once (RFC 9700 §4.14.2), its reuse
//! found by the family's `revoked_grants` row or its own `used_at`.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use tessera_core::Timestamp;
use tessera_core::model::GrantId;
use tessera_core::secret::SecretHash;
use tessera_core::store::{
    Consumed, RefreshRecord, RefreshStore, SUCCESSOR_OUTSIDE_FAMILY, StoreError, StoreResult,
};

use super::rows::{at, from_json, get, json, seconds, seconds_opt};
use super::{PgStore, grants};
use crate::{maybe_executed, store_error};

/// `Replayed` for a token that exists but is used or of a revoked grant; `Missing`
/// for one that does not exist (or only expired). Read after a rotation that did not
/// happen, and by `refresh_token`.
const REFRESH_STATE: &str = "SELECT t.grant_id, t.document, t.expires_at, t.idle_expires_at, t.used_at, \
     g.grant_id AS revoked_grant \
     FROM refresh_tokens t LEFT JOIN revoked_grants g ON g.grant_id = t.grant_id WHERE t.token_hash = $1";

/// A good rotation in one statement: the old token is marked used only if it is
/// unused, live, of an unrevoked grant, and of the successor's grant with an expiry
/// the successor does not outlive; the successor is inserted from the marked row.
/// Racing rotations queue on the old row and only the first finds `used_at` NULL.
const ROTATE: &str = "WITH used AS ( \
     UPDATE refresh_tokens SET used_at = $2 \
     WHERE token_hash = $1 AND used_at IS NULL \
     AND expires_at > $2 AND (idle_expires_at IS NULL OR idle_expires_at > $2) \
     AND grant_id = $4 AND expires_at >= $6 \
     AND NOT EXISTS (SELECT 1 FROM revoked_grants g WHERE g.grant_id = refresh_tokens.grant_id) \
     RETURNING grant_id) \
     INSERT INTO refresh_tokens (token_hash, grant_id, document, expires_at, idle_expires_at, starts_family) \
     SELECT $3, grant_id, $5, $6, $7, false FROM used RETURNING token_hash";

/// A refresh token row read with [`REFRESH_STATE`].
struct RefreshState {
    grant_id: GrantId,
    /// Used, or its grant revoked.
    spent: bool,
    row: PgRow,
}

impl RefreshState {
    fn from_row(row: PgRow) -> StoreResult<Self> {
        let used = seconds_opt(&row, "used_at")?.is_some();
        let revoked_grant: Option<String> = get(&row, "revoked_grant")?;
        Ok(Self { grant_id: GrantId(get(&row, "grant_id")?), spent: used || revoked_grant.is_some(), row })
    }
}

#[async_trait]
impl RefreshStore for PgStore {
    async fn put_refresh_token(&self, hash: &SecretHash, record: &RefreshRecord) -> StoreResult<()> {
        let mut lease = self.pool.lease().await.map_err(store_error)?;
        let mut tx = lease.begin().await.map_err(store_error)?;
        // Ordered with `revoke_grant` of the same grant, which reads this token's
        // expiry once it is committed.
        grants::lock_grant(&mut tx, &record.grant_id).await?;
        sqlx::query(
            "INSERT INTO refresh_tokens \
             (token_hash, grant_id, document, expires_at, idle_expires_at, starts_family) \
             VALUES ($1, $2, $3, $4, $5, true)",
        )
        .bind(hash.to_base64url())
        .bind(record.grant_id.as_str())
        .bind(json(record))
        .bind(at(record.expires_at))
        .bind(record.idle_expires_at.map(at))
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        // The grant may have been revoked before this token was stored (its code
        // replayed while the first redemption was issuing): remember the revocation
        // for as long as this token lives.
        sqlx::query("UPDATE revoked_grants SET expires_at = $2 WHERE grant_id = $1 AND expires_at < $2")
            .bind(record.grant_id.as_str())
            .bind(at(record.expires_at))
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
        let rotated = sqlx::query(ROTATE)
            .bind(&old_hash)
            .bind(at(now))
            .bind(new.to_base64url())
            .bind(successor.grant_id.as_str())
            .bind(json(successor))
            .bind(at(successor.expires_at))
            .bind(successor.idle_expires_at.map(at))
            .fetch_optional(&self.pool)
            .await;
        match rotated {
            Ok(Some(_)) => return Ok(Consumed::Fresh(())),
            Ok(None) => {}
            Err(error) if maybe_executed(&error) => return self.settle_rotation(new, error).await,
            Err(error) => return Err(store_error(error)),
        }
        // Nothing rotated: say why. A token that would rotate but whose successor
        // leaves its family is a bug in the caller, not a replay.
        let row = sqlx::query(REFRESH_STATE)
            .bind(&old_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        let Some(state) = row.map(RefreshState::from_row).transpose()? else { return Ok(Consumed::Missing) };
        if state.spent {
            return Ok(Consumed::Replayed { grant_id: state.grant_id });
        }
        let live = seconds(&state.row, "expires_at")? > now
            && seconds_opt(&state.row, "idle_expires_at")?.is_none_or(|idle| idle > now);
        if live {
            // Unused, live, its grant not revoked: only the successor's checks failed.
            return Err(StoreError::new(SUCCESSOR_OUTSIDE_FAMILY));
        }
        Ok(Consumed::Missing)
    }
}
