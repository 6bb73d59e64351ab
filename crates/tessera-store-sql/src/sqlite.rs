//! The SQLite store on rusqlite. Reads run inline on the calling task, on a few
//! read connections: a statement on a local WAL file takes microseconds, less than
//! handing it to another thread and back. Writes go to one writer task that
//! commits whatever is queued in one transaction ([`writer`]): SQLite has one writer
//! anyway, and a commit's fixed cost (file locks, WAL frame headers, the pages every
//! insert touches) is then shared by all requests waiting for it.
//!
//! Single-use values are consumed in one statement (`INSERT … ON CONFLICT`,
//! `UPDATE`/`DELETE … RETURNING`) or one savepoint inside the writer's `BEGIN
//! IMMEDIATE` transaction, so other processes on the same file (`tessera users`, a
//! second server) see one winner too: the writer task orders this process, the
//! file's write lock orders processes.

mod factors;
mod polls;
mod writer;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension as _, Row, TransactionBehavior, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_core::Timestamp;
use tessera_core::catalog::Resources;
use tessera_core::model::{Client, ClientId, User};
use tessera_core::secret::SecretHash;
use tessera_core::store::Source;
use tessera_core::store::{
    ClientStore, CodeStore, ConsentStore, Consumed, GrantStore, KeyStore, MaintenanceStore, PendingGrant,
    RefreshRecord, RefreshStore, ReplayStore, RequestStore, ResourceStore, SUCCESSOR_OUTSIDE_FAMILY,
    SecretStore, Session, SessionStore, StoreError, StoreResult, StoredKey, ThrottleStore, TokenRecord,
    TokenStore, UserStore,
};

use crate::{Backend, store_error};
use writer::{WriteError, Writer};

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection: more than this store has.
const STATEMENT_CACHE: usize = 128;

/// Read connections: enough that the runtime's worker threads (one per core) and a
/// blocking task or two rarely wait for one another.
const READERS: usize = 4;

/// The store on one SQLite file.
#[derive(Clone)]
pub(crate) struct SqliteStore {
    readers: Arc<Readers>,
    writer: Writer,
    purge_statements: Arc<[String]>,
}

/// Read-only connections, used inline by whichever task asks. WAL lets them read
/// beside the writer; each statement sees the last commit.
struct Readers {
    connections: Box<[Mutex<Connection>]>,
    next: AtomicUsize,
}

impl Readers {
    /// Runs `f` on a free connection (or waits for one), on this task. A panic
    /// elsewhere while holding a lock left no transaction open, so a poisoned lock
    /// is still usable.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let count = self.connections.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..count {
            let Some(slot) = self.connections.get((start + i) % count) else { continue };
            match slot.try_lock() {
                Ok(connection) => return f(&connection).map_err(store_error),
                Err(TryLockError::Poisoned(poisoned)) => {
                    return f(&poisoned.into_inner()).map_err(store_error);
                }
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let slot = self.connections.get(start % count).ok_or_else(|| store_error("no read connection"))?;
        let connection = slot.lock().unwrap_or_else(PoisonError::into_inner);
        f(&connection).map_err(store_error)
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the file of a `sqlite://PATH` or `sqlite:PATH`
    /// URL (any `?query` is ignored) and applies pending migrations.
    pub(crate) async fn open(url: &str) -> StoreResult<Self> {
        let path = sqlite_path(url)?;
        // Opening may wait on another process's lock: off the async workers.
        let (connection, checkpointer, readers) = tokio::task::spawn_blocking(move || {
            let connection = open_and_migrate(&path)?;
            let checkpointer = open_checkpointer(&path)?;
            let readers =
                (0..READERS).map(|_| open_reader(&path).map(Mutex::new)).collect::<Result<_, _>>()?;
            Ok::<_, rusqlite::Error>((connection, checkpointer, readers))
        })
        .await
        .map_err(store_error)?
        .map_err(store_error)?;
        let writer = Writer::start(connection, checkpointer);
        let purge_statements = Backend::Sqlite
            .purge_statements()
            .into_iter()
            .map(|statement| statement.replace("$1", "?1").replace("$2", "?2"))
            .collect();
        Ok(Self {
            readers: Arc::new(Readers { connections: readers, next: AtomicUsize::new(0) }),
            writer,
            purge_statements,
        })
    }

    /// Runs a read on a read connection, on this task.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        self.readers.read(f)
    }

    /// Runs a write in the writer's next batch; returns once it is committed.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, WriteError> + Send + 'static,
    ) -> StoreResult<T> {
        self.writer.write(f).await
    }

    /// [`Self::write`] for one writing statement and nothing fallible after it.
    async fn write_one<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, WriteError> + Send + 'static,
    ) -> StoreResult<T> {
        self.writer.write_one(f).await
    }
}

/// The file path of a SQLite URL.
pub(crate) fn sqlite_path(url: &str) -> StoreResult<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    if path.is_empty() {
        return Err(store_error(format!("storage.url names no SQLite file (got `{url}`)")));
    }
    Ok(path.to_owned())
}

/// Opens the writer connection and migrates, starting again while another process
/// holds the file's lock. The busy handler does not cover every step here: switching
/// a fresh file to WAL, or two connections upgrading their locks at once, fail with
/// SQLITE_BUSY at once (SQLite refuses to wait where waiting could deadlock), which
/// two instances starting together on a new file hit about one time in four.
fn open_and_migrate(path: &str) -> rusqlite::Result<Connection> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match open_and_migrate_once(path) {
            Err(rusqlite::Error::SqliteFailure(error, _))
                if error.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

fn open_and_migrate_once(path: &str) -> rusqlite::Result<Connection> {
    let mut connection = Connection::open(path)?;
    // busy_timeout makes writers of other processes queue instead of failing with
    // SQLITE_BUSY; WAL lets their readers run beside the one writer; NORMAL syncs
    // at checkpoints only (a crash may lose the last commits, never corrupt).
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    tune(&connection)?;
    migrate(&mut connection)?;
    Ok(connection)
}

/// A read connection on the (already migrated, WAL) file. `query_only` makes any
/// write through it an error: writes belong to the writer task.
fn open_reader(path: &str) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.pragma_update(None, "query_only", true)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    tune(&connection)?;
    Ok(connection)
}

/// The connection that copies the WAL into the file beside the writes (see
/// [`writer`]). A PASSIVE checkpoint waits for no lock, so the busy timeout is moot.
fn open_checkpointer(path: &str) -> rusqlite::Result<Connection> {
    Connection::open(path)
}

/// Per-connection settings that change speed, not durability or locking.
fn tune(connection: &Connection) -> rusqlite::Result<()> {
    // No `mmap_size`: a memory map made no measurable difference to code redemption
    // here, and its resident file pages count in the server's RSS (212 MiB against
    // 31 MiB after a benchmark run).
    connection.pragma_update(None, "temp_store", "MEMORY")
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
        let document = self.read(|c| {
            c.prepare_cached("SELECT document FROM clients WHERE client_id = ?1")?
                .query_row([client_id.as_str()], |row| row.get(0))
                .optional()
        })?;
        from_json_opt(document)
    }

    async fn put_clients(&self, clients: &[Client]) -> StoreResult<()> {
        let documents = clients
            .iter()
            .map(|client| Ok((client.client_id.as_str().to_owned(), to_json(client)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        // One savepoint: all of them or none.
        self.write(move |c| {
            let mut insert = c.prepare_cached(
                "INSERT INTO clients (client_id, document) VALUES (?1, ?2) \
                 ON CONFLICT (client_id) DO UPDATE SET document = excluded.document",
            )?;
            for (client_id, document) in &documents {
                insert.execute(params![client_id, document])?;
            }
            Ok(())
        })
        .await
    }

    async fn put_clients_from(&self, source: Source, clients: &[Client]) -> StoreResult<()> {
        let documents = clients
            .iter()
            .map(|client| Ok((client.client_id.as_str().to_owned(), to_json(client)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        self.write(move |c| {
            let mut insert = c.prepare_cached(
                "INSERT INTO clients (client_id, document, source) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (client_id) DO UPDATE SET document = excluded.document, source = excluded.source",
            )?;
            for (client_id, document) in &documents {
                insert.execute(params![client_id, document, source.as_str()])?;
            }
            Ok(())
        })
        .await
    }

    async fn client_sources(&self) -> StoreResult<Vec<(ClientId, Source)>> {
        let rows: Vec<(String, String)> = self.read(|c| {
            c.prepare_cached("SELECT client_id, source FROM clients ORDER BY client_id")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })?;
        rows.into_iter().map(|(id, source)| Ok((ClientId(id), Source::parse(&source)?))).collect()
    }

    async fn remove_client(&self, client_id: &ClientId, now: Timestamp) -> StoreResult<bool> {
        let client_id = client_id.as_str().to_owned();
        self.write(move |tx| {
            revoke_grants_where(tx, "client_id", &client_id, now)?;
            tx.prepare_cached("DELETE FROM consents WHERE client_id = ?1")?.execute([&client_id])?;
            let deleted =
                tx.prepare_cached("DELETE FROM clients WHERE client_id = ?1")?.execute([&client_id])?;
            Ok(deleted > 0)
        })
        .await
    }
}

/// Revokes, as `revoke_grant` does, every grant whose family-starting refresh token or
/// code names `value` as its `field` (`client_id` or `subject`): the grants of a
/// removed client or user. A scan of both tables, run only when one is removed.
fn revoke_grants_where(tx: &Connection, field: &str, value: &str, now: Timestamp) -> rusqlite::Result<()> {
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
impl ResourceStore for SqliteStore {
    async fn put_resources(&self, resources: &Resources) -> StoreResult<()> {
        let document = to_json(resources)?;
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO resources (id, document) VALUES (1, ?1) \
                 ON CONFLICT (id) DO UPDATE SET document = excluded.document",
            )?
            .execute([&document])?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn resources(&self) -> StoreResult<Resources> {
        let document = self.read(|c| {
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
        let (username, subject, password_hash) =
            (user.username.clone(), user.subject.clone(), user.password_hash.clone());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO users (username, subject, password_hash, claims) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (username) DO UPDATE SET subject = excluded.subject, \
                 password_hash = excluded.password_hash, claims = excluded.claims",
            )?
            .execute(params![username, subject, password_hash, claims])?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let row = self.read(|c| {
            c.prepare_cached(
                "SELECT username, subject, password_hash, claims FROM users WHERE username = ?1",
            )?
            .query_row([username], UserRow::read)
            .optional()
        })?;
        row.map(UserRow::into_user).transpose()
    }

    async fn user_by_subject(&self, subject: &str) -> StoreResult<Option<User>> {
        let row = self.read(|c| {
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
        let rows = self.read(|c| {
            c.prepare_cached("SELECT username, subject, password_hash, claims FROM users ORDER BY username")?
                .query_map([], UserRow::read)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter().map(UserRow::into_user).collect()
    }

    async fn put_user_from(&self, user: &User, source: Source) -> StoreResult<()> {
        let claims = to_json(&user.claims)?;
        let (username, subject, password_hash) =
            (user.username.clone(), user.subject.clone(), user.password_hash.clone());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO users (username, subject, password_hash, claims, source) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (username) DO UPDATE SET subject = excluded.subject, \
                 password_hash = excluded.password_hash, claims = excluded.claims, source = excluded.source",
            )?
            .execute(params![username, subject, password_hash, claims, source.as_str()])?;
            Ok(())
        })
        .await
    }

    async fn user_sources(&self) -> StoreResult<Vec<(String, Source)>> {
        let rows: Vec<(String, String)> = self.read(|c| {
            c.prepare_cached("SELECT username, source FROM users ORDER BY username")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })?;
        rows.into_iter().map(|(name, source)| Ok((name, Source::parse(&source)?))).collect()
    }

    async fn remove_user(&self, username: &str, now: Timestamp) -> StoreResult<Option<User>> {
        let username = username.to_owned();
        let row = self
            .write(move |tx| {
                let Some(row) = tx
                    .prepare_cached(
                        "DELETE FROM users WHERE username = ?1 \
                         RETURNING username, subject, password_hash, claims",
                    )?
                    .query_row([&username], UserRow::read)
                    .optional()?
                else {
                    return Ok(None);
                };
                revoke_grants_where(tx, "subject", &row.subject, now)?;
                tx.prepare_cached("DELETE FROM sessions WHERE json_extract(document, '$.subject') = ?1")?
                    .execute([&row.subject])?;
                tx.prepare_cached("DELETE FROM consents WHERE subject = ?1")?.execute([&row.subject])?;
                factors::delete_factors(tx, &row.subject)?;
                Ok(Some(row))
            })
            .await?;
        row.map(UserRow::into_user).transpose()
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        self.read(|c| {
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
        let key = key.clone();
        let inserted = self
            .write(move |c| {
                Ok(c.prepare_cached(
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
                ])?)
            })
            .await?;
        Ok(inserted == 1)
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
                record.client_id,
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
            client_id,
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

    async fn is_revoked(&self, jti: &str, grant_id: Option<&str>) -> StoreResult<bool> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT 1 AS found FROM revoked_jtis WHERE jti = ?1 UNION ALL \
                 SELECT 1 FROM revoked_grants WHERE grant_id = ?2 LIMIT 1",
            )?
            .exists(params![jti, grant_id])
        })
    }
}

#[async_trait]
impl MaintenanceStore for SqliteStore {
    async fn purge_expired(&self, now: Timestamp, batch: u32) -> StoreResult<u64> {
        let mut purged = 0;
        for index in 0..self.purge_statements.len() {
            // Each statement is its own write over at most `batch` rows, so one
            // commit never holds the lock for a whole purge.
            let statements = Arc::clone(&self.purge_statements);
            let deleted = self
                .write(move |c| {
                    let statement = statements.get(index).map_or("SELECT 0", String::as_str);
                    Ok(c.prepare_cached(statement)?.execute(params![now, i64::from(batch)])?)
                })
                .await?;
            purged += u64::try_from(deleted).unwrap_or(u64::MAX);
        }
        Ok(purged)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.prepare_cached("SELECT 1")?.query_row([], |row| row.get::<_, i64>(0)))?;
        // And a write through the writer, committed: a full disk fails every write
        // while reads still work, and then the store is not ready.
        self.write(|c| {
            c.prepare_cached(
                "INSERT INTO readiness_probe (id, probes) VALUES (1, 1) \
                 ON CONFLICT (id) DO UPDATE SET probes = readiness_probe.probes + 1",
            )?
            .execute([])?;
            Ok(())
        })
        .await
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
        let (hash, grant_id) = (hash.to_base64url(), grant.grant_id.clone());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO authorization_codes (code_hash, grant_id, document, expires_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![hash, grant_id, document, expires_at])?;
            Ok(())
        })
        .await
    }

    async fn consume_code(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Consumed<PendingGrant>> {
        let code_hash = hash.to_base64url();
        // One writing statement, then a read: no savepoint needed.
        let outcome = self
            .write_one(move |c| {
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
            })
            .await?;
        Ok(match outcome {
            Consumed::Fresh(document) => Consumed::Fresh(from_json(&document)?),
            Consumed::Replayed { grant_id } => Consumed::Replayed { grant_id },
            Consumed::Missing => Consumed::Missing,
        })
    }

    async fn redeem_code(
        &self,
        hash: &SecretHash,
        presented: &tessera_core::store::CodePresentation,
        now: Timestamp,
    ) -> StoreResult<Result<Consumed<PendingGrant>, tessera_core::store::CodeMismatch>> {
        let code_hash = hash.to_base64url();
        // The code's row never changes but for `consumed_at`, so its binding is checked
        // on an inline read, off the single writer; the mark is then one conditional
        // statement of the writer, so of racing redemptions (here or in another process)
        // only one finds `consumed_at` still NULL (RFC 6749 §4.1.2), and a request that
        // does not match never writes (the code stays unused).
        let row: Option<(String, String, bool)> = self.read(|c| {
            c.prepare_cached(
                "SELECT grant_id, document, consumed_at IS NOT NULL FROM authorization_codes \
                 WHERE code_hash = ?1 AND expires_at > ?2",
            )?
            .query_row(params![code_hash, now], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .optional()
        })?;
        let Some((grant_id, document, used)) = row else { return Ok(Ok(Consumed::Missing)) };
        if used {
            return Ok(Ok(Consumed::Replayed { grant_id }));
        }
        let grant: PendingGrant = from_json(&document)?;
        if let Some(mismatch) = grant.mismatch(presented) {
            return Ok(Err(mismatch));
        }
        let marked = self
            .write_one(move |c| {
                Ok(c.prepare_cached(
                    "UPDATE authorization_codes SET consumed_at = ?2 \
                     WHERE code_hash = ?1 AND consumed_at IS NULL AND expires_at > ?2",
                )?
                .execute(params![code_hash, now])?)
            })
            .await?;
        // Not marked: a racing redemption came first (or the code expired meanwhile).
        Ok(Ok(if marked == 1 { Consumed::Fresh(grant) } else { Consumed::Replayed { grant_id } }))
    }

    async fn redeemed_code(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<PendingGrant>> {
        let code_hash = hash.to_base64url();
        let document: Option<String> = self.read(|c| {
            c.prepare_cached(
                "SELECT document FROM authorization_codes \
                 WHERE code_hash = ?1 AND consumed_at IS NOT NULL AND expires_at > ?2",
            )?
            .query_row(params![code_hash, now], |row| row.get(0))
            .optional()
        })?;
        from_json_opt(document)
    }
}

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
            record.grant_id,
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
            .execute(params![record.grant_id, record.expires_at])?;
            Ok(())
        })
        .await
    }

    async fn refresh_token(&self, hash: &SecretHash) -> StoreResult<Consumed<RefreshRecord>> {
        let Some(state) = self.read(|c| RefreshState::read(c, &hash.to_base64url()))? else {
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
            if grant_id != successor.grant_id || successor.expires_at > expires_at {
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
                Ok(Consumed::Replayed { grant_id: state.grant_id })
            }
            Rotation::Refused(_) => Ok(Consumed::Missing),
        }
    }
}

#[async_trait]
impl GrantStore for SqliteStore {
    async fn revoke_grant(
        &self,
        grant_id: &str,
        now: Timestamp,
        remember_until: Timestamp,
    ) -> StoreResult<()> {
        let grant_id = grant_id.to_owned();
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

#[async_trait]
impl RequestStore for SqliteStore {
    async fn put_request(
        &self,
        key: &str,
        document: &serde_json::Value,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let (key, document) = (key.to_owned(), to_json(document)?);
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO pending_requests (key, document, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (key) DO UPDATE SET document = excluded.document, expires_at = excluded.expires_at",
            )?
            .execute(params![key, document, expires_at])?;
            Ok(())
        })
        .await
    }

    async fn request(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>> {
        let document = self.read(|c| {
            c.prepare_cached("SELECT document FROM pending_requests WHERE key = ?1 AND expires_at > ?2")?
                .query_row(params![key, now], |row| row.get(0))
                .optional()
        })?;
        from_json_opt(document)
    }

    async fn consume_request(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>> {
        // RFC 9126 §2.2: single use. Of racing deletes only one gets the row back.
        let key = key.to_owned();
        let document = self
            .write(move |c| {
                Ok(c.prepare_cached(
                    "DELETE FROM pending_requests WHERE key = ?1 AND expires_at > ?2 RETURNING document",
                )?
                .query_row(params![key, now], |row| row.get(0))
                .optional()?)
            })
            .await?;
        from_json_opt(document)
    }

    async fn requests_with_prefix(
        &self,
        prefix: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<(String, serde_json::Value)>> {
        let pattern = crate::backend::like_prefix(prefix);
        let rows: Vec<(String, String)> = self.read(|c| {
            c.prepare_cached(
                "SELECT key, document FROM pending_requests WHERE key LIKE ?1 ESCAPE '\\' AND expires_at > ?2 \
                 ORDER BY key",
            )?
            .query_map(params![pattern, now], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect()
        })?;
        rows.into_iter().map(|(key, document)| Ok((key, from_json(&document)?))).collect()
    }

    async fn swap_request(
        &self,
        key: &str,
        expected: &serde_json::Value,
        replacement: &serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (key, expected, replacement) = (key.to_owned(), expected.clone(), to_json(replacement)?);
        // Read and write inside the writer's transaction, which holds the file's write
        // lock: no other write, of this process or another, lands in between.
        self.write(move |tx| {
            let current: Option<String> = tx
                .prepare_cached("SELECT document FROM pending_requests WHERE key = ?1 AND expires_at > ?2")?
                .query_row(params![key, now], |row| row.get(0))
                .optional()?;
            let Some(current) = current else { return Ok(false) };
            if serde_json::from_str::<serde_json::Value>(&current).ok().as_ref() != Some(&expected) {
                return Ok(false);
            }
            tx.prepare_cached("UPDATE pending_requests SET document = ?2 WHERE key = ?1")?
                .execute(params![key, replacement])?;
            Ok(true)
        })
        .await
    }
}

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn consented_scopes(&self, subject: &str, client_id: &str) -> StoreResult<Vec<String>> {
        let scopes = self.read(|c| {
            c.prepare_cached("SELECT scopes FROM consents WHERE subject = ?1 AND client_id = ?2")?
                .query_row(params![subject, client_id], |row| row.get(0))
                .optional()
        })?;
        Ok(from_json_opt(scopes)?.unwrap_or_default())
    }

    async fn put_consent(&self, subject: &str, client_id: &str, scopes: &[String]) -> StoreResult<()> {
        let scopes = to_json(&scopes)?;
        let (subject, client_id) = (subject.to_owned(), client_id.to_owned());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO consents (subject, client_id, scopes) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (subject, client_id) DO UPDATE SET scopes = excluded.scopes",
            )?
            .execute(params![subject, client_id, scopes])?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl ThrottleStore for SqliteStore {
    async fn record_failure(&self, key: &str, now: Timestamp, window: i64) -> StoreResult<u32> {
        // One upsert counts: concurrent failures in many processes each add one. A
        // passed window restarts at 1 (both SETs read the old row).
        let key = key.to_owned();
        let failures = self
            .write(move |c| {
                Ok(c.prepare_cached(
                    "INSERT INTO login_failures (key, failures, window_ends_at) VALUES (?1, 1, ?3) \
                 ON CONFLICT (key) DO UPDATE SET \
                 failures = CASE WHEN login_failures.window_ends_at <= ?2 THEN 1 \
                 ELSE login_failures.failures + 1 END, \
                 window_ends_at = CASE WHEN login_failures.window_ends_at <= ?2 THEN ?3 \
                 ELSE login_failures.window_ends_at END \
                 RETURNING failures",
                )?
                .query_row(params![key, now, now.saturating_add(window)], |row| row.get(0))?)
            })
            .await?;
        Ok(count(failures))
    }

    async fn failures(&self, key: &str, now: Timestamp) -> StoreResult<u32> {
        let failures = self.read(|c| {
            c.prepare_cached("SELECT failures FROM login_failures WHERE key = ?1 AND window_ends_at > ?2")?
                .query_row(params![key, now], |row| row.get(0))
                .optional()
        })?;
        Ok(failures.map_or(0, count))
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM login_failures WHERE key = ?1")?.execute([key])?;
            Ok(())
        })
        .await
    }

    async fn reserve_attempt(&self, key: &str, limit: u32, now: Timestamp, window: i64) -> StoreResult<bool> {
        // Check and count in one upsert: past the limit the conflict's WHERE is false, no
        // row is written and none returned. A passed window restarts at 1.
        let key = key.to_owned();
        let reserved = self
            .write(move |c| {
                Ok(c.prepare_cached(
                    "INSERT INTO login_failures (key, failures, window_ends_at) VALUES (?1, 1, ?3) \
                     ON CONFLICT (key) DO UPDATE SET \
                     failures = CASE WHEN login_failures.window_ends_at <= ?2 THEN 1 \
                     ELSE login_failures.failures + 1 END, \
                     window_ends_at = CASE WHEN login_failures.window_ends_at <= ?2 THEN ?3 \
                     ELSE login_failures.window_ends_at END \
                     WHERE login_failures.window_ends_at <= ?2 OR login_failures.failures < ?4 \
                     RETURNING failures",
                )?
                .query_row(params![key, now, now.saturating_add(window), limit], |row| row.get::<_, i64>(0))
                .optional()?)
            })
            .await?;
        Ok(reserved.is_some())
    }

    async fn refund_attempt(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE login_failures SET failures = failures - 1 WHERE key = ?1 AND failures > 0",
            )?
            .execute([key])?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl SecretStore for SqliteStore {
    async fn shared_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        // The first insert wins; every process then reads the winner.
        let (name, candidate) = (name.to_owned(), candidate.to_vec());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO shared_secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            )?
            .execute(params![name, candidate])?;
            Ok(c.prepare_cached("SELECT value FROM shared_secrets WHERE name = ?1")?
                .query_row([name], |row| row.get(0))?)
        })
        .await
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
