//! Sign-in sessions on PostgreSQL, by the hash of the session cookie.

use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::secret::SecretHash;
use tessera_core::store::{Session, SessionStore, StoreResult};

use super::PgStore;
use super::rows::{at, from_json, json};
use crate::store_error;

#[async_trait]
impl SessionStore for PgStore {
    async fn put_session(&self, hash: &SecretHash, session: &Session) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (session_hash, document, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (session_hash) DO UPDATE SET document = excluded.document, \
             expires_at = excluded.expires_at",
        )
        .bind(hash.to_base64url())
        .bind(json(session))
        .bind(at(session.expires_at))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn session(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<Session>> {
        let row = sqlx::query("SELECT document FROM sessions WHERE session_hash = $1 AND expires_at > $2")
            .bind(hash.to_base64url())
            .bind(at(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.map(|row| from_json(&row, "document")).transpose()
    }

    async fn delete_session(&self, hash: &SecretHash) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE session_hash = $1")
            .bind(hash.to_base64url())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn sessions_of(&self, subject: &str, now: Timestamp) -> StoreResult<Vec<Session>> {
        let rows = sqlx::query(
            "SELECT document FROM sessions WHERE document ->> 'subject' = $1 AND expires_at > $2",
        )
        .bind(subject)
        .bind(at(now))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        let mut sessions =
            rows.iter().map(|row| from_json::<Session>(row, "document")).collect::<StoreResult<Vec<_>>>()?;
        sessions.sort_by(|a, b| (a.auth_time, &a.sid).cmp(&(b.auth_time, &b.sid)));
        Ok(sessions)
    }

    async fn end_session_of(&self, subject: &str, sid: &str) -> StoreResult<bool> {
        let ended =
            sqlx::query("DELETE FROM sessions WHERE document ->> 'subject' = $1 AND document ->> 'sid' = $2")
                .bind(subject)
                .bind(sid)
                .execute(&self.pool)
                .await
                .map_err(store_error)?;
        Ok(ended.rows_affected() > 0)
    }
}
