//! Authorization codes on PostgreSQL: each is redeemed once (RFC 6749 §4.1.2).

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::types::time::OffsetDateTime;
use tessera_core::Timestamp;
use tessera_core::model::GrantId;
use tessera_core::secret::SecretHash;
use tessera_core::store::{
    CodeMismatch, CodePresentation, CodeStore, Consumed, PendingGrant, StoreError, StoreResult,
};

use super::PgStore;
use super::batches::{BatchFailed, Batched};
use super::connections::Connections;
use super::rows::{at, from_json, get, json, seconds_opt};
use crate::{maybe_executed, store_error, unreachable};

/// A good code redemption waiting for its batch.
pub(super) struct Redemption {
    code_hash: String,
    /// The fields the code's grant must hold (`CodePresentation::fields_to_match`).
    fields: serde_json::Value,
    now: OffsetDateTime,
}

/// Marks each code used at its redemption's time if it is unused, unexpired and its
/// grant holds the presented fields (RFC 6749 §4.1.2, RFC 7636 §4.6); returns the
/// position and the grant of each it marked. Codes another transaction holds are
/// skipped (`batches.rs`).
const REDEEM_BATCH: &str = "WITH batch AS ( \
       SELECT * FROM unnest($1::text[], $2::jsonb[], $3::timestamptz[]) \
       WITH ORDINALITY AS b(code_hash, fields, now, position)), \
     redeemable AS ( \
       SELECT c.code_hash FROM authorization_codes AS c JOIN batch AS b USING (code_hash) \
       WHERE c.consumed_at IS NULL AND c.expires_at > b.now AND c.document @> b.fields \
       FOR UPDATE OF c SKIP LOCKED) \
     UPDATE authorization_codes AS c SET consumed_at = b.now \
     FROM redeemable AS r JOIN batch AS b USING (code_hash) \
     WHERE c.code_hash = r.code_hash AND c.expires_at > b.now AND c.document @> b.fields \
     RETURNING b.position, c.document";

/// Good code redemptions, batched.
pub(super) struct Redemptions;

impl Batched for Redemptions {
    type Item = Redemption;

    fn run<'a>(
        pool: &'a Connections,
        items: &'a [Redemption],
    ) -> BoxFuture<'a, Result<Vec<PgRow>, sqlx::Error>> {
        let code_hashes: Vec<&str> = items.iter().map(|item| item.code_hash.as_str()).collect();
        let fields: Vec<Json<&serde_json::Value>> = items.iter().map(|item| Json(&item.fields)).collect();
        let times: Vec<OffsetDateTime> = items.iter().map(|item| item.now).collect();
        Box::pin(async move {
            sqlx::query(REDEEM_BATCH).bind(code_hashes).bind(fields).bind(times).fetch_all(pool).await
        })
    }
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
        .bind(grant.grant_id.as_str())
        .bind(json(grant))
        .bind(at(expires_at))
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
        .bind(at(now))
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
        .bind(at(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        match used {
            Some(row) => Ok(Consumed::Replayed { grant_id: GrantId(get(&row, "grant_id")?) }),
            None => Ok(Consumed::Missing),
        }
    }

    async fn redeem_code(
        &self,
        hash: &SecretHash,
        presented: &CodePresentation,
        now: Timestamp,
    ) -> StoreResult<Result<Consumed<PendingGrant>, CodeMismatch>> {
        let code_hash = hash.to_base64url();
        // The good request, in one statement: the code is marked used only if its
        // grant holds every field the presentation must match (`@>`, built by core
        // beside `PendingGrant::mismatch`). Racing redemptions queue on the row and
        // only the first finds `consumed_at` still NULL. The statement carries every
        // redemption waiting at the time (`batches.rs`).
        let redemption =
            Redemption { code_hash: code_hash.clone(), fields: presented.fields_to_match(), now: at(now) };
        match self.redemptions.submit(redemption).await {
            Ok(Some(row)) => return Ok(Ok(Consumed::Fresh(from_json(&row, "document")?))),
            Ok(None) => {}
            Err(error) if maybe_executed(&error) => {
                return self.settle_redemption(&code_hash, now, None, BatchFailed(error)).await;
            }
            // The server refused the batch as a whole (a statement timeout, say; batches
            // skip locked rows, so they never deadlock): the full check answers this code
            // alone.
            Err(error) if !unreachable(&error) => {
                tracing::debug!(error = %error, "batched code redemption refused; checking the code alone");
            }
            Err(error) => return Err(StoreError::unavailable(BatchFailed(error))),
        }
        // Anything else (unknown, expired, used, or a presentation that does not
        // match, or matches only by the full check): the row is taken first, and
        // core's check decides. A mismatch leaves the code unused.
        let mut lease = self.pool.lease().await.map_err(store_error)?;
        let mut tx = lease.begin().await.map_err(store_error)?;
        let row = sqlx::query(
            "SELECT grant_id, document, consumed_at FROM authorization_codes \
             WHERE code_hash = $1 AND expires_at > $2 FOR UPDATE",
        )
        .bind(&code_hash)
        .bind(at(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        let Some(row) = row else { return Ok(Ok(Consumed::Missing)) };
        if seconds_opt(&row, "consumed_at")?.is_some() {
            return Ok(Ok(Consumed::Replayed { grant_id: GrantId(get(&row, "grant_id")?) }));
        }
        let grant: PendingGrant = from_json(&row, "document")?;
        if let Some(mismatch) = grant.mismatch(presented) {
            return Ok(Err(mismatch));
        }
        sqlx::query("UPDATE authorization_codes SET consumed_at = $2 WHERE code_hash = $1")
            .bind(&code_hash)
            .bind(at(now))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        if let Err(error) = tx.commit().await {
            return self.settle_redemption(&code_hash, now, Some(grant), error).await;
        }
        Ok(Ok(Consumed::Fresh(grant)))
    }

    async fn redeemed_code(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<PendingGrant>> {
        let row = sqlx::query(
            "SELECT document FROM authorization_codes \
             WHERE code_hash = $1 AND consumed_at IS NOT NULL AND expires_at > $2",
        )
        .bind(hash.to_base64url())
        .bind(at(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.map(|row| from_json(&row, "document")).transpose()
    }
}
