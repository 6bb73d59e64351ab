//! Revoking grants on PostgreSQL (RFC 9700 §4.14.2, RFC 7009 §2.1): the whole family,
//! and nothing of other grants.

use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::model::GrantId;
use tessera_core::store::{GrantStore, StoreResult};

use super::rows::at;
use super::{PgStore, Transaction};
use crate::store_error;

#[async_trait]
impl GrantStore for PgStore {
    async fn revoke_grant(
        &self,
        grant_id: &GrantId,
        now: Timestamp,
        remember_until: Timestamp,
    ) -> StoreResult<()> {
        let mut lease = self.pool.lease().await.map_err(store_error)?;
        let mut tx = lease.begin().await.map_err(store_error)?;
        // Waits for a first refresh token of this grant being stored, so it is seen.
        lock_grant(&mut tx, grant_id).await?;
        // The row refuses every refresh token of the grant, so it is kept as long as
        // its access tokens may live and until the last stored artefact of the family
        // expires: its codes, and the refresh token that started it, whose expiry
        // every later one shares (the only one indexed by grant).
        sqlx::query(
            "INSERT INTO revoked_grants (grant_id, expires_at) SELECT $1, MAX(until) FROM ( \
             SELECT $3::timestamptz AS until \
             UNION ALL SELECT expires_at FROM refresh_tokens WHERE grant_id = $1 AND starts_family \
             UNION ALL SELECT expires_at FROM authorization_codes WHERE grant_id = $1) AS family WHERE true \
             ON CONFLICT (grant_id) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE revoked_grants.expires_at < excluded.expires_at",
        )
        .bind(grant_id.as_str())
        .bind(at(now))
        .bind(at(remember_until))
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        // Unused codes become used: a later redemption is refused as a replay.
        sqlx::query(
            "UPDATE authorization_codes SET consumed_at = $2 WHERE grant_id = $1 AND consumed_at IS NULL",
        )
        .bind(grant_id.as_str())
        .bind(at(now))
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(())
    }
}

/// Holds a transaction-scoped advisory lock on `grant_id` until `tx` ends: orders the
/// revocation of a grant with the storing of its first refresh token, which under
/// READ COMMITTED could otherwise each miss the other's uncommitted row.
pub(super) async fn lock_grant(tx: &mut Transaction<'_>, grant_id: &GrantId) -> StoreResult<()> {
    sqlx::query("SELECT 1 FROM pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(grant_id.as_str())
        .execute(&mut **tx)
        .await
        .map_err(store_error)?;
    Ok(())
}

/// Revokes, as `revoke_grant` does, every grant whose family-starting refresh token or
/// code names `value` as its `field` (`client_id` or `subject`): the grants of a
/// removed client or user. A scan of both tables, run only when one is removed.
pub(super) async fn revoke_grants_where(
    tx: &mut Transaction<'_>,
    field: &'static str,
    value: &str,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO revoked_grants (grant_id, expires_at) \
         SELECT grant_id, MAX(expires_at) FROM ( \
         SELECT grant_id, expires_at FROM refresh_tokens \
         WHERE starts_family AND document ->> $1::text = $2 \
         UNION ALL SELECT grant_id, expires_at FROM authorization_codes \
         WHERE document ->> $1::text = $2) AS family GROUP BY grant_id \
         ON CONFLICT (grant_id) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE revoked_grants.expires_at < excluded.expires_at",
    )
    .bind(field)
    .bind(value)
    .execute(&mut **tx)
    .await
    .map_err(store_error)?;
    sqlx::query(
        "UPDATE authorization_codes SET consumed_at = $3 \
         WHERE consumed_at IS NULL AND document ->> $1::text = $2",
    )
    .bind(field)
    .bind(value)
    .bind(at(now))
    .execute(&mut **tx)
    .await
    .map_err(store_error)?;
    Ok(())
}
