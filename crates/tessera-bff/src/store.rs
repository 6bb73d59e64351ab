//! The BFF's own database (SQLite or PostgreSQL, through sqlx's `Any` driver): sessions
//! keyed by the SHA-256 of their cookie value, pending logins, seen logout-token `jti`s.
//! Several BFF instances on one PostgreSQL share all three.

use std::sync::Once;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row as _};

pub type StoreResult<T> = Result<T, sqlx::Error>;

/// A signed-in browser's server-side state; tokens never leave it.
#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: String,
    /// The provider's `sid`, or the BFF's own random one; public (in `bff:logout_url`).
    pub sid: String,
    pub sub: String,
    /// The ID token's claims (JSON object).
    pub claims: String,
    pub id_token: String,
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// The DPoP key the tokens are bound to (PKCS#8, base64url); `None`: Bearer tokens.
    pub dpop_key: Option<String>,
    pub access_issued_at: i64,
    pub access_expires_at: i64,
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
}

/// A login started at `/bff/login`, waiting for its callback.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    pub state: String,
    pub verifier: String,
    pub nonce: String,
    pub return_url: String,
    pub expires_at: i64,
}

pub struct Store {
    pool: AnyPool,
}

const SESSION_COLUMNS: &str = "id_hash, sid, sub, claims, id_token, access_token, refresh_token, \
     dpop_key, access_issued_at, access_expires_at, created_at, last_seen, expires_at";

impl Store {
    /// Connects and creates the tables (idempotent, safe for instances starting together).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let postgres = url.starts_with("postgres");
        let pool = AnyPoolOptions::new().max_connections(if postgres { 16 } else { 4 }).connect(url).await?;
        let migration = if postgres {
            include_str!("../migrations/postgres/0001_bff.sql")
        } else {
            include_str!("../migrations/sqlite/0001_bff.sql")
        };
        if postgres {
            // Two instances creating the same tables at once: serialise on an advisory lock.
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(7517001)").execute(&mut *tx).await?;
            sqlx::raw_sql(migration).execute(&mut *tx).await?;
            tx.commit().await?;
        } else {
            sqlx::raw_sql(migration).execute(&pool).await?;
        }
        Ok(Self { pool })
    }

    pub async fn insert_login(&self, login: &PendingLogin) -> StoreResult<()> {
        sqlx::query("INSERT INTO bff_logins (state, verifier, nonce, return_url, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(login.state.clone())
            .bind(login.verifier.clone())
            .bind(login.nonce.clone())
            .bind(login.return_url.clone())
            .bind(login.expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes and returns the login for `state`: a state is good for one callback.
    pub async fn take_login(&self, state: &str) -> StoreResult<Option<PendingLogin>> {
        let row = sqlx::query(
            "DELETE FROM bff_logins WHERE state = $1 RETURNING state, verifier, nonce, return_url, expires_at",
        )
        .bind(state.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(PendingLogin {
                state: row.try_get(0)?,
                verifier: row.try_get(1)?,
                nonce: row.try_get(2)?,
                return_url: row.try_get(3)?,
                expires_at: row.try_get(4)?,
            })
        })
        .transpose()
    }

    pub async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO bff_sessions (id_hash, sid, sub, claims, id_token, access_token, refresh_token, \
             dpop_key, access_issued_at, access_expires_at, created_at, last_seen, expires_at, refreshing_until) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0)",
        )
        .bind(s.id_hash.clone())
        .bind(s.sid.clone())
        .bind(s.sub.clone())
        .bind(s.claims.clone())
        .bind(s.id_token.clone())
        .bind(s.access_token.clone())
        .bind(s.refresh_token.clone())
        .bind(s.dpop_key.clone())
        .bind(s.access_issued_at)
        .bind(s.access_expires_at)
        .bind(s.created_at)
        .bind(s.last_seen)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn session(&self, id_hash: &str) -> StoreResult<Option<Session>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM bff_sessions WHERE id_hash = $1");
        let row =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id_hash.to_owned()).fetch_optional(&self.pool).await?;
        row.map(|row| {
            Ok(Session {
                id_hash: row.try_get(0)?,
                sid: row.try_get(1)?,
                sub: row.try_get(2)?,
                claims: row.try_get(3)?,
                id_token: row.try_get(4)?,
                access_token: row.try_get(5)?,
                refresh_token: row.try_get(6)?,
                dpop_key: row.try_get(7)?,
                access_issued_at: row.try_get(8)?,
                access_expires_at: row.try_get(9)?,
                created_at: row.try_get(10)?,
                last_seen: row.try_get(11)?,
                expires_at: row.try_get(12)?,
            })
        })
        .transpose()
    }

    pub async fn touch(&self, id_hash: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE bff_sessions SET last_seen = $1 WHERE id_hash = $2 AND last_seen < $1")
            .bind(now)
            .bind(id_hash.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes the refresh lease of a session until `until`: true for exactly one caller
    /// among instances racing (a conditional update), until the lease ends or is released,
    /// and only while the session still holds `access_token`: a caller that read the
    /// session before another instance refreshed it must not refresh again with the
    /// rotated-away refresh token (the provider would take that for theft).
    pub async fn lease_refresh(
        &self,
        id_hash: &str,
        access_token: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE bff_sessions SET refreshing_until = $1 \
             WHERE id_hash = $2 AND refreshing_until <= $3 AND access_token = $4",
        )
        .bind(until)
        .bind(id_hash.to_owned())
        .bind(now)
        .bind(access_token.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores refreshed tokens and releases the lease.
    pub async fn save_tokens(
        &self,
        id_hash: &str,
        access_token: &str,
        refresh_token: Option<&str>,
        issued_at: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE bff_sessions SET access_token = $1, refresh_token = $2, access_issued_at = $3, \
             access_expires_at = $4, refreshing_until = 0 WHERE id_hash = $5",
        )
        .bind(access_token.to_owned())
        .bind(refresh_token.map(str::to_owned))
        .bind(issued_at)
        .bind(expires_at)
        .bind(id_hash.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn release_refresh(&self, id_hash: &str) -> StoreResult<()> {
        sqlx::query("UPDATE bff_sessions SET refreshing_until = 0 WHERE id_hash = $1")
            .bind(id_hash.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM bff_sessions WHERE id_hash = $1")
            .bind(id_hash.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends the sessions a back-channel logout names: by `sid` when given (and `sub`
    /// too when both are), else every session of `sub`. Returns how many ended.
    pub async fn delete_matching(&self, sid: Option<&str>, sub: Option<&str>) -> StoreResult<u64> {
        let done = match (sid, sub) {
            (Some(sid), Some(sub)) => {
                sqlx::query("DELETE FROM bff_sessions WHERE sid = $1 AND sub = $2")
                    .bind(sid.to_owned())
                    .bind(sub.to_owned())
                    .execute(&self.pool)
                    .await?
            }
            (Some(sid), None) => {
                sqlx::query("DELETE FROM bff_sessions WHERE sid = $1")
                    .bind(sid.to_owned())
                    .execute(&self.pool)
                    .await?
            }
            (None, Some(sub)) => {
                sqlx::query("DELETE FROM bff_sessions WHERE sub = $1")
                    .bind(sub.to_owned())
                    .execute(&self.pool)
                    .await?
            }
            (None, None) => return Ok(0),
        };
        Ok(done.rows_affected())
    }

    /// Records a logout token's `jti`; false when it was seen before (a replay).
    pub async fn remember_jti(&self, jti: &str, now: i64, expires_at: i64) -> StoreResult<bool> {
        sqlx::query("DELETE FROM bff_logout_jtis WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let done = sqlx::query(
            "INSERT INTO bff_logout_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti.to_owned())
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Drops expired logins and sessions, and the oldest pending logins beyond the
    /// newest `keep_logins`: anyone can start a login, so their number is bounded (a
    /// flood makes early starters sign in again, it does not fill the database).
    pub async fn purge(&self, now: i64, keep_logins: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM bff_logins WHERE expires_at < $1").bind(now).execute(&self.pool).await?;
        sqlx::query(
            "DELETE FROM bff_logins WHERE expires_at <= \
             (SELECT expires_at FROM bff_logins ORDER BY expires_at DESC LIMIT 1 OFFSET $1)",
        )
        .bind(keep_logins)
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM bff_sessions WHERE expires_at < $1").bind(now).execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    async fn pending_logins_are_bounded(url: &str, prefix: &str) {
        let store = Store::connect(url).await.unwrap();
        for i in 0..30 {
            let login = PendingLogin {
                state: format!("{prefix}-{i}"),
                verifier: "v".to_owned(),
                nonce: "n".to_owned(),
                return_url: "/".to_owned(),
                expires_at: 1_000_000 + i,
            };
            store.insert_login(&login).await.unwrap();
        }
        store.purge(0, 10).await.unwrap();
        assert!(store.take_login(&format!("{prefix}-19")).await.unwrap().is_none(), "the oldest went");
        assert!(store.take_login(&format!("{prefix}-20")).await.unwrap().is_some(), "the newest ten stay");
        assert!(store.take_login(&format!("{prefix}-29")).await.unwrap().is_some());
        store.purge(2_000_000, 10).await.unwrap();
        assert!(store.take_login(&format!("{prefix}-21")).await.unwrap().is_none(), "expired ones go");
    }

    #[tokio::test]
    async fn pending_logins_are_bounded_on_sqlite() {
        let path = std::env::temp_dir().join(format!("bff-store-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        pending_logins_are_bounded(&format!("sqlite://{}?mode=rwc", path.display()), "s").await;
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn pending_logins_are_bounded_on_postgres() {
        let Ok(url) = std::env::var("TESSERA_TEST_POSTGRES") else {
            eprintln!("TESSERA_TEST_POSTGRES unset: skipped");
            return;
        };
        let store = Store::connect(&url).await.unwrap();
        sqlx::query("DELETE FROM bff_logins").execute(&store.pool).await.unwrap();
        pending_logins_are_bounded(&url, "p").await;
    }
}
