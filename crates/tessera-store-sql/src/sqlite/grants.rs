//! Revoking grants on SQLite: a whole family, or every grant of a removed client or user.

use async_trait::async_trait;
use rusqlite::{Connection, params};
use tessera_core::Timestamp;
use tessera_core::model::GrantId;
use tessera_core::store::{GrantStore, StoreResult};

use super::SqliteStore;

// Used by clients.rs and users.rs; it is grant revocation, so it lives here.
/// Revokes, as `revoke_grant` does, every grant whose family-starting refresh token or
/// code names `value` as its `field` (`client_id` or `subject`): the grants of a
/// removed client or user. A scan of both tables, run only when one is removed.
pub(super) fn revoke_grants_where(
    tx: &Connection,
    field: &str,
    value: &str,
    now: Timestamp,
) -> rusqlite::Result<()> {
    let path = format!("$.{field}");
    tx.prepare_cached(
        "INSERT INTO revoked_grants (grant_id, expires_at) \
         SELECT grant_id, MAX(expires_at) FROM ( \
         SELECT grant_id, expires_at FROM refresh_tokens \
         WHERE starts_family = 1 AND json_extract(document, ?1) = ?2 \
         UNION ALL SELECT grant_id, expires_at FROM authorization_codes \
         WHERE json_extract(document, ?1) = ?2) AS family WHERE true GROUP BY grant_id \
         ON CONFLICT (grant_id) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE revoked_grants.expires_at < excluded.expires_at",
    )?
    .execute(params![path, value])?;
    tx.prepare_cached(
        "UPDATE authorization_codes SET consumed_at = ?3 \
         WHERE consumed_at IS NULL AND json_extract(document, ?1) = ?2",
    )?
    .execute(params![path, value, now])?;
    Ok(())
}

#[async_trait]
impl GrantStore for SqliteStore {
    async fn revoke_grant(
        &self,
        grant_id: &GrantId,
        now: Timestamp,
        remember_until: Timestamp,
    ) -> StoreResult<()> {
        let grant_id = grant_id.0.clone();
        self.write(move |tx| {
            // RFC 9700 §4.14.2: the whole family, and nothing of other grants. The row
            // refuses every refresh token of the grant, so it is kept as long as its
            // access tokens may live and until the last stored artefact of the family
            // expires: its codes, and the refresh token that started it, whose expiry
            // every later one shares (the only one indexed by grant).
            tx.prepare_cached(
                "INSERT INTO revoked_grants (grant_id, expires_at) SELECT ?1, MAX(until) FROM ( \
                 SELECT ?3 AS until \
                 UNION ALL SELECT expires_at FROM refresh_tokens WHERE grant_id = ?1 AND starts_family = 1 \
                 UNION ALL SELECT expires_at FROM authorization_codes WHERE grant_id = ?1) AS family WHERE true \
                 ON CONFLICT (grant_id) DO UPDATE SET expires_at = excluded.expires_at \
                 WHERE revoked_grants.expires_at < excluded.expires_at",
            )?
            .execute(params![grant_id, now, remember_until])?;
            // Unused codes become used: a later redemption is refused as a replay.
            tx.prepare_cached(
                "UPDATE authorization_codes SET consumed_at = ?2 WHERE grant_id = ?1 AND consumed_at IS NULL",
            )?
            .execute(params![grant_id, now])?;
            Ok(())
        })
        .await
    }
}
