//! The PostgreSQL store on sqlx: shared by many instances. Single-use values are
//! consumed in one statement (`INSERT … ON CONFLICT`, `UPDATE`/`DELETE … RETURNING`)
//! or one transaction that first takes the row it changes, never read-then-write.

mod factors;
mod polls;
mod rows;
mod sign_in;

use std::sync::Once;

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row as _};
use tessera_core::Timestamp;
use tessera_core::catalog::Resources;
use tessera_core::model::{Client, ClientId, User};
use tessera_core::secret::SecretHash;
use tessera_core::store::Source;
use tessera_core::store::{
    ClientStore, KeyStore, MaintenanceStore, ReplayStore, ResourceStore, StoreResult, StoredKey, TokenRecord,
    TokenStore, UserStore,
};

use crate::{Backend, StoreOptions, store_error};
use rows::{from_json, to_json};

/// Readiness: rewrites the one probe row (migration 0008).
const PROBE: &str = "INSERT INTO readiness_probe (id, probes) VALUES (1, 1) \
     ON CONFLICT (id) DO UPDATE SET probes = readiness_probe.probes + 1";

/// The store on PostgreSQL, through a sqlx pool.
#[derive(Clone)]
pub(crate) struct PgStore {
    pool: AnyPool,
    purge_statements: Vec<String>,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`) and applies pending migrations. Safe when
    /// several instances start at once: migrations run under an advisory lock.
    pub(crate) async fn connect(url: &str, options: StoreOptions) -> StoreResult<Self> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = Backend::Postgres;
        let pool = AnyPoolOptions::new()
            .max_connections(backend.max_connections())
            // Fail fast while PostgreSQL is down: a request waits at most this long for
            // a connection (sqlx retries refused connects within it, so a returning
            // server is used within a fraction of it). `test_before_acquire` (on by
            // default) drops connections that died with the server before use.
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(true)
            .connect(url)
            .await
            .map_err(store_error)?;
        backend.migrator().run(&pool).await.map_err(store_error)?;
        Ok(Self { pool, purge_statements: backend.purge_statements() })
    }

    /// Closes the pool, waiting for connections in use.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl ClientStore for PgStore {
    async fn client(&self, client_id: &ClientId) -> StoreResult<Option<Client>> {
        let row = sqlx::query("SELECT document FROM clients WHERE client_id = $1")
            .bind(client_id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.map(|row| from_json(&row, "document")).transpose()
    }

    async fn put_clients(&self, clients: &[Client]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        for client in clients {
            sqlx::query(
                "INSERT INTO clients (client_id, document) VALUES ($1, $2) \
                 ON CONFLICT (client_id) DO UPDATE SET document = excluded.document",
            )
            .bind(client.client_id.as_str())
            .bind(to_json(client)?)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)
    }

    async fn put_clients_from(&self, source: Source, clients: &[Client]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        for client in clients {
            sqlx::query(
                "INSERT INTO clients (client_id, document, source) VALUES ($1, $2, $3) \
                 ON CONFLICT (client_id) DO UPDATE SET document = excluded.document, source = excluded.source",
            )
            .bind(client.client_id.as_str())
            .bind(to_json(client)?)
            .bind(source.as_str())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)
    }

    async fn client_sources(&self) -> StoreResult<Vec<(ClientId, Source)>> {
        let rows = sqlx::query("SELECT client_id, source FROM clients ORDER BY client_id")
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("client_id").map_err(store_error)?;
                let source: String = row.try_get("source").map_err(store_error)?;
                Ok((ClientId(id), Source::parse(&source)?))
            })
            .collect()
    }

    async fn remove_client(&self, client_id: &ClientId, now: Timestamp) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?
            .rows_affected();
        revoke_grants_where(&mut tx, "client_id", client_id.as_str(), now).await?;
        sqlx::query("DELETE FROM consents WHERE client_id = $1")
            .bind(client_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(deleted > 0)
    }
}

/// Revokes, as `revoke_grant` does, every grant whose family-starting refresh token or
/// code names `value` as its `field` (`client_id` or `subject`): the grants of a
/// removed client or user. A scan of both tables, run only when one is removed.
async fn revoke_grants_where(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    field: &'static str,
    value: &str,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO revoked_grants (grant_id, expires_at) \
         SELECT grant_id, MAX(expires_at) FROM ( \
         SELECT grant_id, expires_at FROM refresh_tokens \
         WHERE starts_family = 1 AND document::jsonb ->> $1::text = $2 \
         UNION ALL SELECT grant_id, expires_at FROM authorization_codes \
         WHERE document::jsonb ->> $1::text = $2) AS family GROUP BY grant_id \
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
         WHERE consumed_at IS NULL AND document::jsonb ->> $1::text = $2",
    )
    .bind(field)
    .bind(value)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(store_error)?;
    Ok(())
}

#[async_trait]
impl ResourceStore for PgStore {
    async fn put_resources(&self, resources: &Resources) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO resources (id, document) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET document = excluded.document",
        )
        .bind(to_json(resources)?)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn resources(&self) -> StoreResult<Resources> {
        let row = sqlx::query("SELECT document FROM resources WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(row.map(|row| from_json(&row, "document")).transpose()?.unwrap_or_default())
    }
}

fn user_from_row(row: &AnyRow) -> StoreResult<User> {
    Ok(User {
        subject: row.try_get("subject").map_err(store_error)?,
        username: row.try_get("username").map_err(store_error)?,
        password_hash: row.try_get("password_hash").map_err(store_error)?,
        claims: from_json(row, "claims")?,
    })
}

#[async_trait]
impl UserStore for PgStore {
    async fn put_user(&self, user: &User) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (username, subject, password_hash, claims) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (username) DO UPDATE SET subject = excluded.subject, \
             password_hash = excluded.password_hash, claims = excluded.claims",
        )
        .bind(&user.username)
        .bind(&user.subject)
        .bind(&user.password_hash)
        .bind(to_json(&user.claims)?)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let row =
            sqlx::query("SELECT username, subject, password_hash, claims FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(&self.pool)
                .await
                .map_err(store_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_subject(&self, subject: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query(
            "SELECT username, subject, password_hash, claims FROM users WHERE subject = $1 \
             ORDER BY username LIMIT 1",
        )
        .bind(subject)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        let rows =
            sqlx::query("SELECT username, subject, password_hash, claims FROM users ORDER BY username")
                .fetch_all(&self.pool)
                .await
                .map_err(store_error)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn put_user_from(&self, user: &User, source: Source) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (username, subject, password_hash, claims, source) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (username) DO UPDATE SET subject = excluded.subject, \
             password_hash = excluded.password_hash, claims = excluded.claims, source = excluded.source",
        )
        .bind(&user.username)
        .bind(&user.subject)
        .bind(&user.password_hash)
        .bind(to_json(&user.claims)?)
        .bind(source.as_str())
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn user_sources(&self) -> StoreResult<Vec<(String, Source)>> {
        let rows = sqlx::query("SELECT username, source FROM users ORDER BY username")
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                let name: String = row.try_get("username").map_err(store_error)?;
                let source: String = row.try_get("source").map_err(store_error)?;
                Ok((name, Source::parse(&source)?))
            })
            .collect()
    }

    async fn remove_user(&self, username: &str, now: Timestamp) -> StoreResult<Option<User>> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let row = sqlx::query(
            "DELETE FROM users WHERE username = $1 RETURNING username, subject, password_hash, claims",
        )
        .bind(username)
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        let Some(user) = row.as_ref().map(user_from_row).transpose()? else {
            return Ok(None);
        };
        revoke_grants_where(&mut tx, "subject", &user.subject, now).await?;
        sqlx::query("DELETE FROM sessions WHERE document::jsonb ->> 'subject' = $1")
            .bind(&user.subject)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        sqlx::query("DELETE FROM consents WHERE subject = $1")
            .bind(&user.subject)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        factors::delete_factors(&mut tx, &user.subject).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(Some(user))
    }
}

fn key_from_row(row: &AnyRow) -> Result<StoredKey, sqlx::Error> {
    Ok(StoredKey {
        generation: row.try_get("generation")?,
        kid: row.try_get("kid")?,
        algorithm: row.try_get("algorithm")?,
        private_key: row.try_get("private_key")?,
        sealed: row.try_get::<i64, _>("sealed")? != 0,
        created_at: row.try_get("created_at")?,
        activates_at: row.try_get("activates_at")?,
        retires_at: row.try_get("retires_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

#[async_trait]
impl KeyStore for PgStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows = sqlx::query(
            "SELECT generation, kid, algorithm, private_key, sealed, created_at, activates_at, retires_at, \
             expires_at FROM signing_keys ORDER BY generation",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(key_from_row).collect::<Result<_, _>>().map_err(store_error)
    }

    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<bool> {
        // The unique generation decides which instance's "next key" exists.
        let result = sqlx::query(
            "INSERT INTO signing_keys (generation, kid, algorithm, private_key, sealed, created_at, \
             activates_at, retires_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT DO NOTHING",
        )
        .bind(key.generation)
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(key.private_key.clone())
        .bind(i64::from(key.sealed))
        .bind(key.created_at)
        .bind(key.activates_at)
        .bind(key.retires_at)
        .bind(key.expires_at)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(result.rows_affected() == 1)
    }
}

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
        .bind(expires)
        .bind(now)
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
        .bind(&record.client_id)
        .bind(&record.subject)
        .bind(to_json(&record.scope)?)
        .bind(to_json(&record.audience)?)
        .bind(record.issued_at)
        .bind(record.expires_at)
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
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(TokenRecord {
            jti: row.try_get("jti").map_err(store_error)?,
            client_id: row.try_get("client_id").map_err(store_error)?,
            subject: row.try_get("subject").map_err(store_error)?,
            scope: from_json(&row, "scope")?,
            audience: from_json(&row, "audience")?,
            issued_at: row.try_get("issued_at").map_err(store_error)?,
            expires_at: row.try_get("expires_at").map_err(store_error)?,
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
        .bind(expires)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn is_revoked(&self, jti: &str, grant_id: Option<&str>) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT 1 AS found FROM revoked_jtis WHERE jti = $1 UNION ALL \
             SELECT 1 FROM revoked_grants WHERE grant_id = $2 LIMIT 1",
        )
        .bind(jti)
        .bind(grant_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(row.is_some())
    }
}

#[async_trait]
impl MaintenanceStore for PgStore {
    async fn purge_expired(&self, now: Timestamp, batch: u32) -> StoreResult<u64> {
        let mut purged = 0;
        for statement in &self.purge_statements {
            // Each statement is its own short transaction over at most `batch` rows.
            let result = sqlx::query(AssertSqlSafe(statement.clone()))
                .bind(now)
                .bind(i64::from(batch))
                .execute(&self.pool)
                .await
                .map_err(store_error)?;
            purged += result.rows_affected();
        }
        Ok(purged)
    }

    async fn ping(&self) -> StoreResult<()> {
        // A write, committed: a database that answers reads but cannot write (disk
        // full, read-only standby) is not ready.
        sqlx::query(PROBE).execute(&self.pool).await.map_err(store_error)?;
        Ok(())
    }
}
