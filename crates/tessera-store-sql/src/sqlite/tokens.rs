//! Reference tokens, revoked JWT ids and single-use marks on SQLite.

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, params};
use tessera_core::Timestamp;
use tessera_core::model::{ClientId, GrantId};
use tessera_core::secret::SecretHash;
use tessera_core::store::{ReplayStore, StoreResult, TokenRecord, TokenStore};

use super::{SqliteStore, from_json, to_json};

#[async_trait]
impl TokenStore for SqliteStore {
    async fn put_reference_token(&self, hash: &SecretHash, record: &TokenRecord) -> StoreResult<()> {
        let (scope, audience) = (to_json(&record.scope)?, to_json(&record.audience)?);
        let (hash, record) = (hash.to_base64url(), record.clone());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO reference_tokens (token_hash, jti, client_id, subject, scope, audience, \
                 issued_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                hash,
                record.jti,
                record.client_id.as_str(),
                record.subject,
                scope,
                audience,
                record.issued_at,
                record.expires_at,
            ])?;
            Ok(())
        })
        .await
    }

    async fn reference_token(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<TokenRecord>> {
        let row = self.read(|c| {
            c.prepare_cached(
                "SELECT jti, client_id, subject, scope, audience, issued_at, expires_at FROM reference_tokens \
                 WHERE token_hash = ?1 AND expires_at > ?2",
            )?
            .query_row(params![hash.to_base64url(), now], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, i64>(5)?,
                    row.get::<_, i64>(6)?,
                ))
            })
            .optional()
        })?;
        let Some((jti, client_id, subject, scope, audience, issued_at, expires_at)) = row else {
            return Ok(None);
        };
        Ok(Some(TokenRecord {
            jti,
            client_id: ClientId(client_id),
            subject,
            scope: from_json(&scope)?,
            audience: from_json(&audience)?,
            issued_at,
            expires_at,
        }))
    }

    async fn revoke_reference_token(&self, hash: &SecretHash) -> StoreResult<bool> {
        let hash = hash.to_base64url();
        let deleted = self
            .write(move |c| {
                Ok(c.prepare_cached("DELETE FROM reference_tokens WHERE token_hash = ?1")?.execute([hash])?)
            })
            .await?;
        Ok(deleted > 0)
    }

    async fn revoke_jti(&self, jti: &str, expires: Timestamp) -> StoreResult<()> {
        let jti = jti.to_owned();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO revoked_jtis (jti, expires_at) VALUES (?1, ?2) ON CONFLICT (jti) DO NOTHING",
            )?
            .execute(params![jti, expires])?;
            Ok(())
        })
        .await
    }

    async fn is_revoked(&self, jti: &str, grant_id: Option<&GrantId>) -> StoreResult<bool> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT 1 AS found FROM revoked_jtis WHERE jti = ?1 UNION ALL \
                 SELECT 1 FROM revoked_grants WHERE grant_id = ?2 LIMIT 1",
            )?
            .exists(params![jti, grant_id.map(GrantId::as_str)])
        })
    }
}

#[async_trait]
impl ReplayStore for SqliteStore {
    async fn remember_once(&self, key: &str, expires: Timestamp, now: Timestamp) -> StoreResult<bool> {
        // One statement checks and marks: a live row blocks the insert, an expired
        // one is taken over. Of racing calls exactly one affects a row.
        let key = key.to_owned();
        let changed = self
            .write_one(move |c| {
                Ok(c.prepare_cached(
                    "INSERT INTO replay_cache (key, expires_at) VALUES (?1, ?2) \
                     ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at \
                     WHERE replay_cache.expires_at <= ?3",
                )?
                .execute(params![key, expires, now])?)
            })
            .await?;
        Ok(changed == 1)
    }
}
