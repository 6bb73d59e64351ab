//! Authorization codes on SQLite: each redemption marks the code in one statement.

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, params};
use tessera_core::Timestamp;
use tessera_core::model::GrantId;
use tessera_core::secret::SecretHash;
use tessera_core::store::{CodeStore, Consumed, PendingGrant, StoreResult};

use super::{SqliteStore, from_json, from_json_opt, to_json};

#[async_trait]
impl CodeStore for SqliteStore {
    async fn put_code(
        &self,
        hash: &SecretHash,
        grant: &PendingGrant,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let document = to_json(grant)?;
        let (hash, grant_id) = (hash.to_base64url(), grant.grant_id.0.clone());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO authorization_codes (code_hash, grant_id, document, expires_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![hash, grant_id, document, expires_at])?;
            Ok(())
        })
        .await
    }

    async fn consume_code(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Consumed<PendingGrant>> {
        let code_hash = hash.to_base64url();
        // One writing statement, then a read: no savepoint needed.
        let outcome = self
            .write_one(move |c| {
                // One statement checks and marks: of racing redemptions (here or in
                // another process) only the first finds `consumed_at` still NULL
                // (RFC 6749 §4.1.2).
                let fresh: Option<String> = c
                    .prepare_cached(
                        "UPDATE authorization_codes SET consumed_at = ?2 \
                     WHERE code_hash = ?1 AND consumed_at IS NULL AND expires_at > ?2 RETURNING document",
                    )?
                    .query_row(params![code_hash, now], |row| row.get(0))
                    .optional()?;
                if let Some(document) = fresh {
                    return Ok(Consumed::Fresh(document));
                }
                let used: Option<String> = c
                    .prepare_cached(
                        "SELECT grant_id FROM authorization_codes \
                     WHERE code_hash = ?1 AND consumed_at IS NOT NULL AND expires_at > ?2",
                    )?
                    .query_row(params![code_hash, now], |row| row.get(0))
                    .optional()?;
                Ok(used
                    .map_or(Consumed::Missing, |grant_id| Consumed::Replayed { grant_id: GrantId(grant_id) }))
            })
            .await?;
        Ok(match outcome {
            Consumed::Fresh(document) => Consumed::Fresh(from_json(&document)?),
            Consumed::Replayed { grant_id } => Consumed::Replayed { grant_id },
            Consumed::Missing => Consumed::Missing,
        })
    }

    async fn redeem_code(
        &self,
        hash: &SecretHash,
        presented: &tessera_core::store::CodePresentation,
        now: Timestamp,
    ) -> StoreResult<Result<Consumed<PendingGrant>, tessera_core::store::CodeMismatch>> {
        let code_hash = hash.to_base64url();
        // The code's row never changes but for `consumed_at`, so its binding is checked
        // on an inline read, off the single writer; the mark is then one conditional
        // statement of the writer, so of racing redemptions (here or in another process)
        // only one finds `consumed_at` still NULL (RFC 6749 §4.1.2), and a request that
        // does not match never writes (the code stays unused).
        let row: Option<(String, String, bool)> = self.read(|c| {
            c.prepare_cached(
                "SELECT grant_id, document, consumed_at IS NOT NULL FROM authorization_codes \
                 WHERE code_hash = ?1 AND expires_at > ?2",
            )?
            .query_row(params![code_hash, now], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .optional()
        })?;
        let Some((grant_id, document, used)) = row else { return Ok(Ok(Consumed::Missing)) };
        if used {
            return Ok(Ok(Consumed::Replayed { grant_id: GrantId(grant_id) }));
        }
        let grant: PendingGrant = from_json(&document)?;
        if let Some(mismatch) = grant.mismatch(presented) {
            return Ok(Err(mismatch));
        }
        let marked = self
            .write_one(move |c| {
                Ok(c.prepare_cached(
                    "UPDATE authorization_codes SET consumed_at = ?2 \
                     WHERE code_hash = ?1 AND consumed_at IS NULL AND expires_at > ?2",
                )?
                .execute(params![code_hash, now])?)
            })
            .await?;
        // Not marked: a racing redemption came first (or the code expired meanwhile).
        Ok(Ok(if marked == 1 {
            Consumed::Fresh(grant)
        } else {
            Consumed::Replayed { grant_id: GrantId(grant_id) }
        }))
    }

    async fn redeemed_code(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<PendingGrant>> {
        let code_hash = hash.to_base64url();
        let document: Option<String> = self.read(|c| {
            c.prepare_cached(
                "SELECT document FROM authorization_codes \
                 WHERE code_hash = ?1 AND consumed_at IS NOT NULL AND expires_at > ?2",
            )?
            .query_row(params![code_hash, now], |row| row.get(0))
            .optional()
        })?;
        from_json_opt(document)
    }
}
