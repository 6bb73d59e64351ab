//! The SQLite store on rusqlite: one connection behind a mutex, used inline on the
//! calling task. A statement on a local WAL file takes microseconds; handing it to
//! a connection thread and back (as an async driver does) costs far more than the
//! statement. SQLite has one writer anyway, so one connection loses nothing.
//!
//! Single-use values are consumed in one statement (`INSERT … ON CONFLICT`,
//! `UPDATE`/`DELETE … RETURNING`) or one `BEGIN IMMEDIATE` transaction, so other
//! processes on the same file (`tessera users`, a second server) see one winner too:
//! the mutex orders this process, the file's write lock orders processes.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension as _, Row, TransactionBehavior, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_core::Timestamp;
use tessera_core::catalog::Resources;
use tessera_core::model::{Client, ClientId, User};
use tessera_core::secret::SecretHash;
use tessera_core::store::{
    ClientStore, CodeStore, ConsentStore, Consumed, GrantStore, KeyStore, MaintenanceStore, PendingGrant,
    RefreshRecord, RefreshStore, ReplayStore, RequestStore, ResourceStore, SecretStore, Session,
    SessionStore, StoreError, StoreResult, StoredKey, ThrottleStore, TokenRecord, TokenStore, UserStore,
};

use crate::{Backend, store_error};

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection: more than this store has.
const STATEMENT_CACHE: usize = 128;

/// The store on one SQLite file.
#[derive(Clone)]
pub(crate) struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    purge_statements: Arc<[String]>,
}

impl SqliteStore {
    /// Opens (creating if missing) the file of a `sqlite://PATH` or `sqlite:PATH`
    /// URL (any `?query` is ignored) and applies pending migrations.
    pub(crate) async fn open(url: &str) -> StoreResult<Self> {
        let path = sqlite_path(url)?;
        // Opening may wait on another process's lock: off the async workers.
        let connection = tokio::task::spawn_blocking(move || open_and_migrate(&path))
            .await
            .map_err(store_error)?
            .map_err(store_error)?;
        let purge_statements = Backend::Sqlite
            .purge_statements()
            .into_iter()
            .map(|statement| statement.replace("$1", "?1").replace("$2", "?2"))
            .collect();
        Ok(Self { connection: Arc::new(Mutex::new(connection)), purge_statements })
    }

    /// Runs `f` on the connection, on this task. A panic elsewhere while holding the
    /// lock left no transaction open (dropping one rolls it back), so a poisoned
    /// lock is still usable.
    fn call<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let mut connection = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut connection).map_err(store_error)
    }
}

/// The file path of a SQLite URL.
fn sqlite_path(url: &str) -> StoreResult<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    if path.is_empty() {
        return Err(store_error(format!("storage.url names no SQLite file (got `{url}`)")));
    }
    Ok(path.to_owned())
}

fn open_and_migrate(path: &str) -> rusqlite::Result<Connection> {
    let mut connection = Connection::open(path)?;
    // busy_timeout makes writers of other processes queue instead of failing with
    // SQLITE_BUSY; WAL lets their readers run beside the one writer; NORMAL syncs
    // at checkpoints only (a crash may lose the last commits, never corrupt).
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    migrate(&mut connection)?;
    Ok(connection)
}

/// Applies the migrations not yet recorded in `schema_migrations`, all in one
/// `BEGIN IMMEDIATE` transaction: of processes starting together, one migrates and
/// the others wait for it and then find nothing to do. A file first migrated by the
/// sqlx migrator (before this store) has its versions in `_sqlx_migrations`.
fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL)",
    )?;
    let from_sqlx: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
        [],
        |row| row.get(0),
    )?;
    if from_sqlx {
        tx.execute(
            "INSERT INTO schema_migrations (version, description) \
             SELECT version, description FROM _sqlx_migrations WHERE success ON CONFLICT DO NOTHING",
            [],
        )?;
    }
    for (version, description, sql) in Backend::Sqlite.migrations() {
        let applied: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |row| row.get(0),
        )?;
        if !applied {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, description) VALUES (?1, ?2)",
                params![version, description],
            )?;
        }
    }
    tx.commit()
}

/// Serializes a value for a JSON text column.
fn to_json(value: &impl Serialize) -> StoreResult<String> {
    serde_json::to_string(value).map_err(StoreError::new)
}

/// Reads a JSON text column's value.
fn from_json<T: DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(StoreError::new)
}

/// Reads an optional JSON document.
fn from_json_opt<T: DeserializeOwned>(text: Option<String>) -> StoreResult<Option<T>> {
    text.as_deref().map(from_json).transpose()
}

/// A counter column as the trait's `u32`, saturating (it only guards a threshold).
fn count(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn client(&self, client_id: &ClientId) -> StoreResult<Option<Client>> {
        let document = self.call(|c| {
            c.prepare_cached("SELECT document FROM clients WHERE client_id = ?1")?
                .query_row([client_id.as_str()], |row| row.get(0))
                .optional()
        })?;
        from_json_opt(document)
    }

    async fn put_clients(&self, clients: &[Client]) -> StoreResult<()> {
        let documents = clients
            .iter()
            .map(|client| Ok((client.client_id.as_str(), to_json(client)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        self.call(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO clients (client_id, document) VALUES (?1, ?2) \
                     ON CONFLICT (client_id) DO UPDATE SET document = excluded.document",
                )?;
                for (client_id, document) in &documents {
                    insert.execute(params![client_id, document])?;
                }
            }
            tx.commit()
        })
    }
}

#[async_trait]
impl ResourceStore for SqliteStore {
    async fn put_resources(&self, resources: &Resources) -> StoreResult<()> {
        let document = to_json(resources)?;
        self.call(|c| {
            c.prepare_cached(
                "INSERT INTO resources (id, document) VALUES (1, ?1) \
                 ON CONFLICT (id) DO UPDATE SET document = excluded.document",
            )?
            .execute([&document])
        })?;
        Ok(())
    }

    async fn resources(&self) -> StoreResult<Resources> {
        let document = self.call(|c| {
            c.prepare_cached("SELECT document FROM resources WHERE id = 1")?
                .query_row([], |row| row.get(0))
                .optional()
        })?;
        Ok(from_json_opt(document)?.unwrap_or_default())
    }
}

/// A user row before its claims are parsed.
struct UserRow {
    username: String,
    subject: String,
    password_hash: String,
    claims: String,
}

impl UserRow {
    /// Reads `username, subject, password_hash, claims`.
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            username: row.get(0)?,
            subject: row.get(1)?,
            password_hash: row.get(2)?,
            claims: row.get(3)?,
        })
    }

    fn into_user(self) -> StoreResult<User> {
        Ok(User {
            subject: self.subject,
            username: self.username,
            password_hash: self.password_hash,
            claims: from_json(&self.claims)?,
        })
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn put_user(&self, user: &User) -> StoreResult<()> {
        let claims = to_json(&user.claims)?;
        self.call(|c| {
            c.prepare_cached(
                "INSERT INTO users (username, subject, password_hash, claims) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (username) DO UPDATE SET subject = excluded.subject, \
                 password_hash = excluded.password_hash, claims = excluded.claims",
            )?
            .execute(params![user.username, user.subject, user.password_hash, claims])
        })?;
        Ok(())
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let row = self.call(|c| {
            c.prepare_cached(
                "SELECT username, subject, password_hash, claims FROM users WHERE username = ?1",
            )?
            .query_row([username], UserRow::read)
            .optional()
        })?;
        row.map(UserRow::into_user).transpose()
    }

    async fn user_by_subject(&self, subject: &str) -> StoreResult<Option<User>> {
        let row = self.call(|c| {
            c.prepare_cached(
                "SELECT username, subject, password_hash, claims FROM users WHERE subject = ?1 \
                 ORDER BY username LIMIT 1",
            )?
            .query_row([subject], UserRow::read)
            .optional()
        })?;
        row.map(UserRow::into_user).transpose()
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        let rows = self.call(|c| {
            c.prepare_cached("SELECT username, subject, password_hash, claims FROM users ORDER BY username")?
                .query_map([], UserRow::read)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter().map(UserRow::into_user).collect()
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        self.call(|c| {
            c.prepare_cached(
                "SELECT generation, kid, algorithm, private_key, sealed, created_at, activates_at, retires_at, \
                 expires_at FROM signing_keys ORDER BY generation",
            )?
            .query_map([], |row| {
                Ok(StoredKey {
                    generation: row.get(0)?,
                    kid: row.get(1)?,
                    algorithm: row.get(2)?,
                    private_key: row.get(3)?,
                    sealed: row.get::<_, i64>(4)? != 0,
                    created_at: row.get(5)?,
                    activates_at: row.get(6)?,
                    retires_at: row.get(7)?,
                    expires_at: row.get(8)?,
                })
            })?
            .collect()
        })
    }

    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<bool> {
        // The unique generation decides which instance's "next key" exists.
        let inserted = self.call(|c| {
            c.prepare_cached(
                "INSERT INTO signing_keys (generation, kid, algorithm, private_key, sealed, created_at, \
                 activates_at, retires_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                key.generation,
                key.kid,
                key.algorithm,
                key.private_key,
                i64::from(key.sealed),
                key.created_at,
                key.activates_at,
                key.retires_at,
                key.expires_at,
            ])
        })?;
        Ok(inserted == 1)
    }
}

#[async_trait]
impl ReplayStore for SqliteStore {
    async fn remember_once(&self, key: &str, expires: Timestamp, now: Timestamp) -> StoreResult<bool> {
        // One statement checks and marks: a live row blocks the insert, an expired
        // one is taken over. Of racing calls exactly one affects a row.
        let changed = self.call(|c| {
            c.prepare_cached(
                "INSERT INTO replay_cache (key, expires_at) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at \
                 WHERE replay_cache.expires_at <= ?3",
            )?
            .execute(params![key, expires, now])
        })?;
        Ok(changed == 1)
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn put_reference_token(&self, hash: &SecretHash, record: &TokenRecord) -> StoreResult<()> {
        let (scope, audience) = (to_json(&record.scope)?, to_json(&record.audience)?);
        self.call(|c| {
            c.prepare_cached(
                "INSERT INTO reference_tokens (token_hash, jti, client_id, subject, scope, audience, \
                 issued_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                hash.to_base64url(),
                record.jti,
                record.client_id,
                record.subject,
                scope,
                audience,
                record.issued_at,
                record.expires_at,
            ])
        })?;
        Ok(())
    }

    async fn reference_token(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<TokenRecord>> {
        let row = self.call(|c| {
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
            client_id,
            subject,
            scope: from_json(&scope)?,
            audience: from_json(&audience)?,
            issued_at,
            expires_at,
        }))
    }

    async fn revoke_reference_token(&self, hash: &SecretHash) -> StoreResult<bool> {
        let deleted = self.call(|c| {
            c.prepare_cached("DELETE FROM reference_tokens WHERE token_hash = ?1")?
                .execute([hash.to_base64url()])
        })?;
        Ok(deleted > 0)
    }

    async fn revoke_jti(&self, jti: &str, expires: Timestamp) -> StoreResult<()> {
        self.call(|c| {
            c.prepare_cached(
                "INSERT INTO revoked_jtis (jti, expires_at) VALUES (?1, ?2) ON CONFLICT (jti) DO NOTHING",
            )?
            .execute(params![jti, expires])
        })?;
        Ok(())
    }

    async fn is_jti_revoked(&self, jti: &str) -> StoreResult<bool> {
        // Revoked by itself, or through its grant: judged when read, so a token minted
        // while its grant is being revoked cannot slip between the two writes.
        self.call(|c| {
            c.prepare_cached(
                "SELECT 1 AS found FROM revoked_jtis WHERE jti = ?1 UNION ALL \
                 SELECT 1 FROM issued_access_tokens t JOIN revoked_grants g ON g.grant_id = t.grant_id \
                 WHERE t.jti = ?1 LIMIT 1",
            )?
            .exists([jti])
        })
    }
}

#[async_trait]
impl MaintenanceStore for SqliteStore {
    async fn purge_expired(&self, now: Timestamp, batch: u32) -> StoreResult<u64> {
        let mut purged = 0;
        for statement in self.purge_statements.iter() {
            // Each statement is its own short transaction over at most `batch` rows,
            // and the lock is released between them.
            let deleted =
                self.call(|c| c.prepare_cached(statement)?.execute(params![now, i64::from(batch)]))?;
            purged += u64::try_from(deleted).unwrap_or(u64::MAX);
        }
        Ok(purged)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.call(|c| c.prepare_cached("SELECT 1")?.query_row([], |row| row.get::<_, i64>(0)))?;
        Ok(())
    }
}

#[async_trait]
impl CodeStore for SqliteStore {
    async fn put_code(
        &self,
        hash: &SecretHash,
        grant: &PendingGrant,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let document = to_json(grant)?;
        self.call(|c| {
            c.prepare_cached(
                "INSERT INTO authorization_codes (code_hash, grant_id, document, expires_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![hash.to_base64url(), grant.grant_id, document, expires_at])
        })?;
        Ok(())
    }

    async fn consume_code(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Consumed<PendingGrant>> {
        let code_hash = hash.to_base64url();
        let outcome = self.call(|c| {
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
            Ok(used.map_or(Consumed::Missing, |grant_id| Consumed::Replayed { grant_id }))
        })?;
        Ok(match outcome {
            Consumed::Fresh(document) => Consumed::Fresh(from_json(&document)?),
            Consumed::Replayed { grant_id } => Consumed::Replayed { grant_id },
            Consumed::Missing => Consumed::Missing,
        })
    }
}

/// `Replayed` for a token that exists but is used, revoked or of a revoked grant;
/// `Missing` for one that does not exist (or only expired). Read after a failed
/// rotation, and by `refresh_token`.
const REFRESH_STATE: &str = "SELECT t.grant_id, t.document, t.used_at, t.revoked, g.grant_id AS revoked_grant \
     FROM refresh_tokens t LEFT JOIN revoked_grants g ON g.grant_id = t.grant_id WHERE t.token_hash = ?1";

/// A refresh token row read with [`REFRESH_STATE`].
struct RefreshState {
    grant_id: String,
    document: String,
    /// Used, revoked, or its grant revoked.
    spent: bool,
}

impl RefreshState {
    fn read(connection: &Connection, token_hash: &str) -> rusqlite::Result<Option<Self>> {
        connection
            .prepare_cached(REFRESH_STATE)?
            .query_row([token_hash], |row| {
                let used_at: Option<i64> = row.get(2)?;
                let revoked: i64 = row.get(3)?;
                let revoked_grant: Option<String> = row.get(4)?;
                Ok(Self {
                    grant_id: row.get(0)?,
                    document: row.get(1)?,
                    spent: used_at.is_some() || revoked != 0 || revoked_grant.is_some(),
                })
            })
            .optional()
    }
}

/// How a rotation ended, before the lock is released.
enum Rotation {
    Rotated,
    /// The successor names another grant: rolled back.
    WrongGrant,
    /// `old` was not rotated; its state, if it exists.
    Refused(Option<RefreshState>),
}

fn insert_refresh_token(
    connection: &Connection,
    token_hash: &str,
    record: &RefreshRecord,
    document: &str,
) -> rusqlite::Result<usize> {
    connection
        .prepare_cached(
            "INSERT INTO refresh_tokens (token_hash, grant_id, document, expires_at, idle_expires_at, revoked) \
             VALUES (?1, ?2, ?3, ?4, ?5, 0)",
        )?
        .execute(params![token_hash, record.grant_id, document, record.expires_at, record.idle_expires_at])
}

#[async_trait]
impl RefreshStore for SqliteStore {
    async fn put_refresh_token(&self, hash: &SecretHash, record: &RefreshRecord) -> StoreResult<()> {
        let document = to_json(record)?;
        self.call(|c| insert_refresh_token(c, &hash.to_base64url(), record, &document))?;
        Ok(())
    }

    async fn refresh_token(&self, hash: &SecretHash) -> StoreResult<Consumed<RefreshRecord>> {
        let Some(state) = self.call(|c| RefreshState::read(c, &hash.to_base64url()))? else {
            return Ok(Consumed::Missing);
        };
        if state.spent {
            return Ok(Consumed::Replayed { grant_id: state.grant_id });
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
        let rotation = self.call(|c| {
            // IMMEDIATE takes the write lock first, so another process cannot commit
            // between our read and our write. The UPDATE marks the old row: a racing
            // rotation then finds `used_at` set, so at most one successor is ever
            // inserted (RFC 9700 §4.14.2). Expired tokens and revoked grants never rotate.
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let used: Option<String> = tx
                .prepare_cached(
                    "UPDATE refresh_tokens SET used_at = ?2 \
                     WHERE token_hash = ?1 AND used_at IS NULL AND revoked = 0 \
                     AND expires_at > ?2 AND (idle_expires_at IS NULL OR idle_expires_at > ?2) \
                     AND NOT EXISTS (SELECT 1 FROM revoked_grants g WHERE g.grant_id = refresh_tokens.grant_id) \
                     RETURNING grant_id",
                )?
                .query_row(params![old_hash, now], |row| row.get(0))
                .optional()?;
            let Some(grant_id) = used else {
                // Dropping `tx` rolls back (nothing was changed).
                return Ok(Rotation::Refused(RefreshState::read(&tx, &old_hash)?));
            };
            if grant_id != successor.grant_id {
                // Dropping `tx` rolls the use of `old` back.
                return Ok(Rotation::WrongGrant);
            }
            insert_refresh_token(&tx, &new_hash, successor, &document)?;
            tx.commit()?;
            Ok(Rotation::Rotated)
        })?;
        match rotation {
            Rotation::Rotated => Ok(Consumed::Fresh(())),
            Rotation::WrongGrant => {
                Err(StoreError::new("a refresh token's successor must belong to the same grant"))
            }
            Rotation::Refused(Some(state)) if state.spent => {
                Ok(Consumed::Replayed { grant_id: state.grant_id })
            }
            Rotation::Refused(_) => Ok(Consumed::Missing),
        }
    }
}

/// Copies the recorded access tokens of grant `?1` into the revoked list.
const REVOKE_ACCESS_TOKENS: &str = "INSERT INTO revoked_jtis (jti, expires_at) \
     SELECT jti, expires_at FROM issued_access_tokens WHERE grant_id = ?1 ON CONFLICT (jti) DO NOTHING";

#[async_trait]
impl GrantStore for SqliteStore {
    async fn record_access_token(&self, jti: &str, grant_id: &str, expires_at: Timestamp) -> StoreResult<()> {
        self.call(|c| {
            c.prepare_cached(
                "INSERT INTO issued_access_tokens (jti, grant_id, expires_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![jti, grant_id, expires_at])
        })?;
        Ok(())
    }

    async fn revoke_grant(&self, grant_id: &str, now: Timestamp) -> StoreResult<()> {
        self.call(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Remember the revocation until the last artefact of the family expires (a
            // refresh token's expiry is the family's, fixed at the first issue).
            tx.prepare_cached(
                "INSERT INTO revoked_grants (grant_id, expires_at) SELECT ?1, MAX(until) FROM ( \
                 SELECT ?2 AS until \
                 UNION ALL SELECT expires_at FROM refresh_tokens WHERE grant_id = ?1 \
                 UNION ALL SELECT expires_at FROM issued_access_tokens WHERE grant_id = ?1 \
                 UNION ALL SELECT expires_at FROM authorization_codes WHERE grant_id = ?1) AS family WHERE true \
                 ON CONFLICT (grant_id) DO UPDATE SET expires_at = excluded.expires_at \
                 WHERE revoked_grants.expires_at < excluded.expires_at",
            )?
            .execute(params![grant_id, now])?;
            // RFC 9700 §4.14.2: the whole family, and nothing of other grants.
            tx.prepare_cached("UPDATE refresh_tokens SET revoked = 1 WHERE grant_id = ?1 AND revoked = 0")?
                .execute([grant_id])?;
            // The write lock is held to the commit, so every access token recorded
            // before it is copied; later ones are judged by `revoked_grants` when read.
            tx.prepare_cached(REVOKE_ACCESS_TOKENS)?.execute([grant_id])?;
            // Unused codes become used: a later redemption is refused as a replay.
            tx.prepare_cached(
                "UPDATE authorization_codes SET consumed_at = ?2 WHERE grant_id = ?1 AND consumed_at IS NULL",
            )?
            .execute(params![grant_id, now])?;
            tx.commit()
        })
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn put_session(&self, hash: &SecretHash, session: &Session) -> StoreResult<()> {
        let document = to_json(session)?;
        self.call(|c| {
            c.prepare_cached(
                "INSERT INTO sessions (session_hash, document, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (session_hash) DO UPDATE SET document = excluded.document, \
                 expires_at = excluded.expires_at",
            )?
            .execute(params![hash.to_base64url(), document, session.expires_at])
        })?;
        Ok(())
    }

    async fn session(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<Session>> {
        let document = self.call(|c| {
            c.prepare_cached("SELECT document FROM sessions WHERE session_hash = ?1 AND expires_at > ?2")?
                .query_row(params![hash.to_base64url(), now], |row| row.get(0))
                .optional()
        })?;
        from_json_opt(document)
    }

    async fn delete_session(&self, hash: &SecretHash) -> StoreResult<()> {
        self.call(|c| {
            c.prepare_cached("DELETE FROM sessions WHERE session_hash = ?1")?.execute([hash.to_base64url()])
        })?;
        Ok(())
    }
}

#[async_trait]
impl RequestStore for SqliteStore {
    async fn put_request(
        &self,
        key: &str,
        document: &serde_json::Value,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let document = to_json(document)?;
        self.call(|c| {
            c.prepare_cached(
                "INSERT INTO pending_requests (key, document, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (key) DO UPDATE SET document = excluded.document, expires_at = excluded.expires_at",
            )?
            .execute(params![key, document, expires_at])
        })?;
        Ok(())
    }

    async fn request(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>> {
        let document = self.call(|c| {
            c.prepare_cached("SELECT document FROM pending_requests WHERE key = ?1 AND expires_at > ?2")?
                .query_row(params![key, now], |row| row.get(0))
                .optional()
        })?;
        from_json_opt(document)
    }

    async fn consume_request(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>> {
        // RFC 9126 §2.2: single use. Of racing deletes only one gets the row back.
        let document = self.call(|c| {
            c.prepare_cached(
                "DELETE FROM pending_requests WHERE key = ?1 AND expires_at > ?2 RETURNING document",
            )?
            .query_row(params![key, now], |row| row.get(0))
            .optional()
        })?;
        from_json_opt(document)
    }

    async fn requests_with_prefix(
        &self,
        prefix: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<(String, serde_json::Value)>> {
        let pattern = crate::backend::like_prefix(prefix);
        let rows: Vec<(String, String)> = self.call(|c| {
            c.prepare_cached(
                "SELECT key, document FROM pending_requests WHERE key LIKE ?1 ESCAPE '\\' AND expires_at > ?2 \
                 ORDER BY key",
            )?
            .query_map(params![pattern, now], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect()
        })?;
        rows.into_iter().map(|(key, document)| Ok((key, from_json(&document)?))).collect()
    }
}

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn consented_scopes(&self, subject: &str, client_id: &str) -> StoreResult<Vec<String>> {
        let scopes = self.call(|c| {
            c.prepare_cached("SELECT scopes FROM consents WHERE subject = ?1 AND client_id = ?2")?
                .query_row(params![subject, client_id], |row| row.get(0))
                .optional()
        })?;
        Ok(from_json_opt(scopes)?.unwrap_or_default())
    }

    async fn put_consent(&self, subject: &str, client_id: &str, scopes: &[String]) -> StoreResult<()> {
        let scopes = to_json(&scopes)?;
        self.call(|c| {
            c.prepare_cached(
                "INSERT INTO consents (subject, client_id, scopes) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (subject, client_id) DO UPDATE SET scopes = excluded.scopes",
            )?
            .execute(params![subject, client_id, scopes])
        })?;
        Ok(())
    }
}

#[async_trait]
impl ThrottleStore for SqliteStore {
    async fn record_failure(&self, key: &str, now: Timestamp, window: i64) -> StoreResult<u32> {
        // One upsert counts: concurrent failures in many processes each add one. A
        // passed window restarts at 1 (both SETs read the old row).
        let failures = self.call(|c| {
            c.prepare_cached(
                "INSERT INTO login_failures (key, failures, window_ends_at) VALUES (?1, 1, ?3) \
                 ON CONFLICT (key) DO UPDATE SET \
                 failures = CASE WHEN login_failures.window_ends_at <= ?2 THEN 1 \
                 ELSE login_failures.failures + 1 END, \
                 window_ends_at = CASE WHEN login_failures.window_ends_at <= ?2 THEN ?3 \
                 ELSE login_failures.window_ends_at END \
                 RETURNING failures",
            )?
            .query_row(params![key, now, now.saturating_add(window)], |row| row.get(0))
        })?;
        Ok(count(failures))
    }

    async fn failures(&self, key: &str, now: Timestamp) -> StoreResult<u32> {
        let failures = self.call(|c| {
            c.prepare_cached("SELECT failures FROM login_failures WHERE key = ?1 AND window_ends_at > ?2")?
                .query_row(params![key, now], |row| row.get(0))
                .optional()
        })?;
        Ok(failures.map_or(0, count))
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        self.call(|c| c.prepare_cached("DELETE FROM login_failures WHERE key = ?1")?.execute([key]))?;
        Ok(())
    }
}

#[async_trait]
impl SecretStore for SqliteStore {
    async fn shared_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        // The first insert wins; every process then reads the winner.
        self.call(|c| {
            c.prepare_cached(
                "INSERT INTO shared_secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            )?
            .execute(params![name, candidate])?;
            c.prepare_cached("SELECT value FROM shared_secrets WHERE name = ?1")?
                .query_row([name], |row| row.get(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;

    #[test]
    fn urls_name_their_file() {
        assert_eq!(sqlite_path("sqlite:///tmp/a.db").unwrap(), "/tmp/a.db");
        assert_eq!(sqlite_path("sqlite://a.db?mode=rwc").unwrap(), "a.db");
        assert_eq!(sqlite_path("sqlite:a.db").unwrap(), "a.db");
        assert!(sqlite_path("sqlite://").is_err());
    }
}
