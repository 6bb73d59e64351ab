//! Refresh tokens on SQLite: a rotation marks the old token and inserts its successor in one write.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension as _, params};
use tessera_core::Timestamp;
use tessera_core::model::GrantId;
use tessera_core::secret::SecretHash;
use tessera_core::store::{
    Consumed, RefreshRecord, RefreshStore, SUCCESSOR_OUTSIDE_FAMILY, StoreError, StoreResult,
};

use super::writer::WriteError;
use super::{SqliteStore, from_json, to_json};

/// `Replayed` for a token that exists but is used or of a revoked grant; `Missing`
/// for one that does not exist (or only expired). Read after a failed rotation, and
/// by `refresh_token`.
const REFRESH_STATE: &str = "SELECT t.grant_id, t.document, t.used_at, g.grant_id AS revoked_grant \
     FROM refresh_tokens t LEFT JOIN revoked_grants g ON g.grant_id = t.grant_id WHERE t.token_hash = ?1";

/// A refresh token row read with [`REFRESH_STATE`].
struct RefreshState {
    grant_id: String,
    document: String,
    /// Used, or its grant revoked.
    spent: bool,
}

impl RefreshState {
    fn read(connection: &Connection, token_hash: &str) -> rusqlite::Result<Option<Self>> {
        connection
            .prepare_cached(REFRESH_STATE)?
            .query_row([token_hash], |row| {
                let used_at: Option<i64> = row.get(2)?;
                let revoked_grant: Option<String> = row.get(3)?;
                Ok(Self {
                    grant_id: row.get(0)?,
                    document: row.get(1)?,
                    spent: used_at.is_some() || revoked_grant.is_some(),
                })
            })
            .optional()
    }
}

/// How a rotation ended, before the lock is released.
enum Rotation {
    Rotated,
    /// `old` was not rotated; its state, if it exists.
    Refused(Option<RefreshState>),
}

/// Stores a refresh token; `starts_family` for the first one of its grant, the only
/// one indexed by grant (migration 0004).
fn insert_refresh_token(
    connection: &Connection,
    token_hash: &str,
    record: &RefreshRecord,
    document: &str,
    starts_family: bool,
) -> rusqlite::Result<usize> {
    connection
        .prepare_cached(
            "INSERT INTO refresh_tokens \
             (token_hash, grant_id, document, expires_at, idle_expires_at, starts_family) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            token_hash,
            record.grant_id.as_str(),
            document,
            record.expires_at,
            record.idle_expires_at,
            starts_family
        ])
}

#[async_trait]
impl RefreshStore for SqliteStore {
    async fn put_refresh_token(&self, hash: &SecretHash, record: &RefreshRecord) -> StoreResult<()> {
        let document = to_json(record)?;
        let (hash, record) = (hash.to_base64url(), record.clone());
        self.write(move |c| {
            insert_refresh_token(c, &hash, &record, &document, true)?;
            // The grant may have been revoked before this token was stored (its code
            // replayed while the first redemption was issuing): remember the revocation
            // for as long as this token lives.
            c.prepare_cached(
                "UPDATE revoked_grants SET expires_at = ?2 WHERE grant_id = ?1 AND expires_at < ?2",
            )?
            .execute(params![record.grant_id.as_str(), record.expires_at])?;
            Ok(())
        })
        .await
    }

    async fn refresh_token(&self, hash: &SecretHash) -> StoreResult<Consumed<RefreshRecord>> {
        let Some(state) = self.read(|c| RefreshState::read(c, &hash.to_base64url()))? else {
            return Ok(Consumed::Missing);
        };
        if state.spent {
            return Ok(Consumed::Replayed { grant_id: GrantId(state.grant_id) });
        }
        Ok(Consumed::Fresh(from_json(&state.document)?))
    }

    async fn rotate_refresh_token(
        &self,
        old: &SecretHash,
        new: &SecretHash,
        successor: &RefreshRecord,
        now: Timestamp,
    ) -> StoreResult<Consumed<()>> {
        let (old_hash, new_hash) = (old.to_base64url(), new.to_base64url());
        let document = to_json(successor)?;
        let successor = successor.clone();
        let rotation = self.write(move |c| {
            // The writer's batch holds the write lock, so another process cannot commit
            // between our read and our write. The UPDATE marks the old row: a racing
            // rotation then finds `used_at` set, so at most one successor is ever
            // inserted (RFC 9700 §4.14.2). Expired tokens and revoked grants never rotate.
            let used: Option<(String, Timestamp)> = c
                .prepare_cached(
                    "UPDATE refresh_tokens SET used_at = ?2 \
                     WHERE token_hash = ?1 AND used_at IS NULL \
                     AND expires_at > ?2 AND (idle_expires_at IS NULL OR idle_expires_at > ?2) \
                     AND NOT EXISTS (SELECT 1 FROM revoked_grants g WHERE g.grant_id = refresh_tokens.grant_id) \
                     RETURNING grant_id, expires_at",
                )?
                .query_row(params![old_hash, now], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            let Some((grant_id, expires_at)) = used else {
                // Nothing was changed.
                return Ok(Rotation::Refused(RefreshState::read(c, &old_hash)?));
            };
            if grant_id != successor.grant_id.0 || successor.expires_at > expires_at {
                // An error rolls the use of `old` back (to this write's savepoint).
                return Err(WriteError::Store(StoreError::new(SUCCESSOR_OUTSIDE_FAMILY)));
            }
            insert_refresh_token(c, &new_hash, &successor, &document, false)?;
            Ok(Rotation::Rotated)
        })
        .await?;
        match rotation {
            Rotation::Rotated => Ok(Consumed::Fresh(())),
            Rotation::Refused(Some(state)) if state.spent => {
                Ok(Consumed::Replayed { grant_id: GrantId(state.grant_id) })
            }
            Rotation::Refused(_) => Ok(Consumed::Missing),
        }
    }
}
