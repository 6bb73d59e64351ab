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

mod clients;
mod codes;
mod consent;
mod factors;
mod grants;
mod keys;
mod maintenance;
mod polls;
mod refresh;
mod requests;
mod sessions;
mod throttle;
mod tokens;
mod users;
mod writer;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_core::store::{StoreError, StoreResult};

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
