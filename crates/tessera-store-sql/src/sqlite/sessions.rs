//! Browser sessions on SQLite, by the hash of the cookie value.

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, params};
use tessera_core::Timestamp;
use tessera_core::secret::SecretHash;
use tessera_core::store::{Session, SessionStore, StoreResult};

use super::{SqliteStore, from_json, from_json_opt, to_json};

#[async_trait]
impl SessionStore for SqliteStore {
    async fn put_session(&self, hash: &SecretHash, session: &Session) -> StoreResult<()> {
        let document = to_json(session)?;
        let (hash, expires_at) = (hash.to_base64url(), session.expires_at);
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO sessions (session_hash, document, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (session_hash) DO UPDATE SET document = excluded.document, \
                 expires_at = excluded.expires_at",
            )?
            .execute(params![hash, document, expires_at])?;
            Ok(())
        })
        .await
    }

    async fn session(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<Session>> {
        let document = self.read(|c| {
            c.prepare_cached("SELECT document FROM sessions WHERE session_hash = ?1 AND expires_at > ?2")?
                .query_row(params![hash.to_base64url(), now], |row| row.get(0))
                .optional()
        })?;
        from_json_opt(document)
    }

    async fn delete_session(&self, hash: &SecretHash) -> StoreResult<()> {
        let hash = hash.to_base64url();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM sessions WHERE session_hash = ?1")?.execute([hash])?;
            Ok(())
        })
        .await
    }

    async fn sessions_of(&self, subject: &str, now: Timestamp) -> StoreResult<Vec<Session>> {
        let documents: Vec<String> = self.read(|c| {
            c.prepare_cached(
                "SELECT document FROM sessions                  WHERE json_extract(document, '$.subject') = ?1 AND expires_at > ?2",
            )?
            .query_map(params![subject, now], |row| row.get(0))?
            .collect()
        })?;
        let mut sessions = documents
            .iter()
            .map(|document| from_json::<Session>(document))
            .collect::<StoreResult<Vec<_>>>()?;
        sessions.sort_by(|a, b| (a.auth_time, &a.sid).cmp(&(b.auth_time, &b.sid)));
        Ok(sessions)
    }

    async fn end_session_of(&self, subject: &str, sid: &str) -> StoreResult<bool> {
        let (subject, sid) = (subject.to_owned(), sid.to_owned());
        self.write_one(move |c| {
            Ok(c.prepare_cached(
                "DELETE FROM sessions WHERE json_extract(document, '$.subject') = ?1                  AND json_extract(document, '$.sid') = ?2",
            )?
            .execute(params![subject, sid])?
                > 0)
        })
        .await
    }
}
