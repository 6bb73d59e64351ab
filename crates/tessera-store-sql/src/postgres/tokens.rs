//! Reference tokens, revoked token ids and single-use marks on PostgreSQL.

use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::model::{ClientId, GrantId};
use tessera_core::secret::SecretHash;
use tessera_core::store::{ReplayStore, StoreResult, TokenRecord, TokenStore};

use super::PgStore;
use super::rows::{at, from_json, get, json, seconds};
use crate::store_error;

#[async_trait]
impl ReplayStore for PgStore {
    async fn remember_once(&self, key: &str, expires: Timestamp, now: Timestamp) -> StoreResult<bool> {
        // One statement checks and marks: a live row blocks the insert, an expired
        // one is taken over. Of racing calls exactly one affects a row.
        let result = sqlx::query(
            "INSERT INTO replay_cache (key, expires_at) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE replay_cache.expires_at <= $3",
        )
        .bind(key)
        .bind(at(expires))
        .bind(at(now))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(result.rows_affected() == 1)
    }
}

#[async_trait]
impl TokenStore for PgStore {
    async fn put_reference_token(&self, hash: &SecretHash, record: &TokenRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO reference_tokens (token_hash, jti, client_id, subject, scope, audience, issued_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(hash.to_base64url())
        .bind(&record.jti)
        .bind(record.client_id.as_str())
        .bind(&record.subject)
        .bind(json(&record.scope))
        .bind(json(&record.audience))
        .bind(at(record.issued_at))
        .bind(at(record.expires_at))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn reference_token(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT jti, client_id, subject, scope, audience, issued_at, expires_at FROM reference_tokens \
             WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(hash.to_base64url())
        .bind(at(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(TokenRecord {
            jti: get(&row, "jti")?,
            client_id: ClientId(get(&row, "client_id")?),
            subject: get(&row, "subject")?,
            scope: from_json(&row, "scope")?,
            audience: from_json(&row, "audience")?,
            issued_at: seconds(&row, "issued_at")?,
            expires_at: seconds(&row, "expires_at")?,
        }))
    }

    async fn revoke_reference_token(&self, hash: &SecretHash) -> StoreResult<bool> {
        let result = sqlx::query("DELETE FROM reference_tokens WHERE token_hash = $1")
            .bind(hash.to_base64url())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected() > 0)
    }

    async fn revoke_jti(&self, jti: &str, expires: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO revoked_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(at(expires))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn is_revoked(&self, jti: &str, grant_id: Option<&GrantId>) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT 1 AS found FROM revoked_jtis WHERE jti = $1 UNION ALL \
             SELECT 1 FROM revoked_grants WHERE grant_id = $2 LIMIT 1",
        )
        .bind(jti)
        .bind(grant_id.map(GrantId::as_str))
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(row.is_some())
    }
}
