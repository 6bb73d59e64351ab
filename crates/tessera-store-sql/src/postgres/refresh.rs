//! Refresh tokens on PostgreSQL: each rotates once (RFC 9700 §4.14.2), its reuse
//! found by the family's `revoked_grants` row or its own `used_at`.

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::types::time::OffsetDateTime;
use tessera_core::Timestamp;
use tessera_core::model::GrantId;
use tessera_core::secret::SecretHash;
use tessera_core::store::{
    Consumed, RefreshRecord, RefreshStore, SUCCESSOR_OUTSIDE_FAMILY, StoreError, StoreResult,
};

use super::batches::{BatchFailed, Batched};
use super::connections::Connections;
use super::rows::{at, from_json, get, json, seconds, seconds_opt};
use super::{PgStore, grants};
use crate::{maybe_executed, store_error, unreachable};

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

/// [`ROTATE`] for a batch: each old token is marked used at its rotation's time, on
/// the same conditions, and its successor inserted; returns the position of each
/// rotated. Tokens another transaction holds are skipped (`batches.rs`), and rotate
/// alone by [`ROTATE`], which waits for them.
const ROTATE_BATCH: &str = "WITH batch AS ( \
       SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::jsonb[], \
         $6::timestamptz[], $7::timestamptz[]) \
       WITH ORDINALITY AS b(old_hash, now, new_hash, grant_id, document, expires_at, idle_expires_at, position)), \
     rotatable AS ( \
       SELECT t.token_hash FROM refresh_tokens AS t JOIN batch AS b ON t.token_hash = b.old_hash \
       WHERE t.used_at IS NULL AND t.expires_at > b.now \
       AND (t.idle_expires_at IS NULL OR t.idle_expires_at > b.now) \
       AND t.grant_id = b.grant_id AND t.expires_at >= b.expires_at \
       AND NOT EXISTS (SELECT 1 FROM revoked_grants g WHERE g.grant_id = t.grant_id) \
       FOR UPDATE OF t SKIP LOCKED), \
     used AS ( \
       UPDATE refresh_tokens AS t SET used_at = b.now \
       FROM rotatable AS r JOIN batch AS b ON b.old_hash = r.token_hash \
       WHERE t.token_hash = r.token_hash AND t.expires_at > b.now \
       AND (t.idle_expires_at IS NULL OR t.idle_expires_at > b.now) \
       AND t.grant_id = b.grant_id AND t.expires_at >= b.expires_at \
       RETURNING b.position), \
     successors AS ( \
       INSERT INTO refresh_tokens (token_hash, grant_id, document, expires_at, idle_expires_at, starts_family) \
       SELECT b.new_hash, b.grant_id, b.document, b.expires_at, b.idle_expires_at, false \
       FROM used JOIN batch AS b USING (position) RETURNING token_hash) \
     SELECT b.position FROM successors AS s JOIN batch AS b ON b.new_hash = s.token_hash";

/// A good rotation waiting for its batch.
pub(super) struct Rotation {
    old_hash: String,
    now: OffsetDateTime,
    new_hash: String,
    grant_id: String,
    document: serde_json::Value,
    expires_at: OffsetDateTime,
    idle_expires_at: Option<OffsetDateTime>,
}

/// Good refresh rotations, batched.
pub(super) struct Rotations;

impl Batched for Rotations {
    type Item = Rotation;

    fn run<'a>(
        pool: &'a Connections,
        items: &'a [Rotation],
    ) -> BoxFuture<'a, Result<Vec<PgRow>, sqlx::Error>> {
        let old_hashes: Vec<&str> = items.iter().map(|item| item.old_hash.as_str()).collect();
        let times: Vec<OffsetDateTime> = items.iter().map(|item| item.now).collect();
        let new_hashes: Vec<&str> = items.iter().map(|item| item.new_hash.as_str()).collect();
        let grant_ids: Vec<&str> = items.iter().map(|item| item.grant_id.as_str()).collect();
        let documents: Vec<Json<&serde_json::Value>> =
            items.iter().map(|item| Json(&item.document)).collect();
        let expiries: Vec<OffsetDateTime> = items.iter().map(|item| item.expires_at).collect();
        let idle_expiries: Vec<Option<OffsetDateTime>> =
            items.iter().map(|item| item.idle_expires_at).collect();
        Box::pin(async move {
            sqlx::query(ROTATE_BATCH)
                .bind(old_hashes)
                .bind(times)
                .bind(new_hashes)
                .bind(grant_ids)
                .bind(documents)
                .bind(expiries)
                .bind(idle_expiries)
                .fetch_all(pool)
                .await
        })
    }
}

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
        // The good rotation, with every other waiting at the time (`batches.rs`).
        let rotation = Rotation {
            old_hash: old_hash.clone(),
            now: at(now),
            new_hash: new.to_base64url(),
            grant_id: successor.grant_id.as_str().to_owned(),
            document: serde_json::to_value(successor).map_err(store_error)?,
            expires_at: at(successor.expires_at),
            idle_expires_at: successor.idle_expires_at.map(at),
        };
        match self.rotations.submit(rotation).await {
            Ok(Some(_)) => return Ok(Consumed::Fresh(())),
            Ok(None) => {}
            Err(error) if maybe_executed(&error) => {
                return self.settle_rotation(new, BatchFailed(error)).await;
            }
            // The server refused the batch as a whole: this token rotates alone.
            Err(error) if !unreachable(&error) => {
                tracing::debug!(error = %error, "batched refresh rotation refused; rotating the token alone");
            }
            Err(error) => return Err(StoreError::unavailable(BatchFailed(error))),
        }
        // Not rotated in the batch (a token another transaction held, or one that
        // does not rotate): alone, in one statement that waits for the token's row.
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
