//! Group commit for the SQLite store: one task owns the write connection and runs
//! the write operations queued by every other task in one `BEGIN IMMEDIATE … COMMIT`.
//!
//! A commit costs the same file-lock system calls and WAL header writes whether it
//! carries one row or fifty, and rows of one batch share the pages they touch (the
//! tail of each table and of each time index). Each operation runs inside its own
//! `SAVEPOINT`, so one that fails rolls back only itself; its caller hears back only
//! after the `COMMIT`, so nothing is acknowledged that is not committed (at the WAL +
//! `synchronous=NORMAL` level). Operations of one batch run one after another on one
//! connection, and the batch holds the file's write lock, so each single-use
//! statement still sees every earlier write, here or in another process.
//!
//! The writer is an async task, not a thread of its own: it commits on the runtime's
//! worker, as reads do, for the microseconds a batch takes. A thread beside the
//! runtime's workers had to be scheduled by the kernel for every batch (on two cores,
//! behind both workers), and requests waited for it while a core idled. Waiting for
//! another process's lock, and checkpoints (which sync the file), run on blocking
//! threads.

use std::cell::Cell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ffi::c_int;
use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use rusqlite::Connection;

use super::BUSY_TIMEOUT;
use tessera_core::store::{StoreError, StoreResult};
use tokio::sync::{Notify, oneshot};

/// At most this many operations share a commit: bounds how long one batch holds the
/// file's write lock against other processes.
const MAX_BATCH: usize = 256;

/// WAL frames past which the writer starts a checkpoint: SQLite's own default
/// (`wal_autocheckpoint`), so the file is synced as often as before.
const CHECKPOINT_FRAMES: c_int = 1000;

/// The checkpoint beside the writes goes over the WAL again while more than this
/// many frames were written during its last pass, so that the pass the writes wait
/// for has about this many to copy and sync.
const REMAINDER_FRAMES: c_int = 100;

/// At most this many passes beside the writes: when writes outpace the copying, the
/// writes must still wait now and then, or the WAL would never start over.
const CATCH_UP_PASSES: usize = 8;

/// [`Shared::checkpoint`]'s states: none running; the second connection copying
/// the WAL; that copy done, the remainder still to copy.
const CHECKPOINT_IDLE: u8 = 0;
const CHECKPOINT_COPYING: u8 = 1;
const CHECKPOINT_COPIED: u8 = 2;

thread_local! {
    /// Frames in the WAL after the last commit on this thread, from the WAL hook.
    static WAL_FRAMES: Cell<c_int> = const { Cell::new(0) };
}

/// Replaces SQLite's automatic checkpoint, which runs inside `COMMIT`: the writer
/// checkpoints off the async workers once the batch's callers have their replies.
#[expect(clippy::unnecessary_wraps, reason = "the signature rusqlite's WAL hook takes")]
fn note_wal_frames(_: &rusqlite::hooks::Wal, frames: c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.set(frames);
    Ok(())
}

/// Why a write operation failed.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// A statement failed.
    Sql(rusqlite::Error),
    /// The operation refused a state it found (rolled back like a failed statement).
    Store(StoreError),
}

impl From<rusqlite::Error> for WriteError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sql(error)
    }
}

impl From<WriteError> for StoreError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::Sql(error) => StoreError::new(error),
            WriteError::Store(error) => error,
        }
    }
}

/// The result of a write operation.
pub(crate) type WriteResult<T> = Result<T, WriteError>;

/// A queued operation, type-erased for the channel.
trait Job: Send {
    /// Whether the operation needs a savepoint of its own to fail alone: every one
    /// that may write more than once.
    fn needs_savepoint(&self) -> bool;
    /// Runs the operation; `false` when it failed and must be rolled back.
    fn run(&mut self, connection: &Connection) -> bool;
    /// Replies with the operation's result, or with `failure` when its batch did not commit.
    fn reply(self: Box<Self>, failure: Option<&str>);
}

struct Pending<T, F> {
    /// See [`Job::needs_savepoint`].
    savepoint: bool,
    operation: Option<F>,
    result: Option<WriteResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> WriteResult<T> + Send,
{
    fn needs_savepoint(&self) -> bool {
        self.savepoint
    }

    fn run(&mut self, connection: &Connection) -> bool {
        let Some(operation) = self.operation.take() else { return false };
        // A panicking operation fails alone; the thread and the batch go on.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| operation(connection)))
            .unwrap_or_else(|_| Err(WriteError::Store(StoreError::new("a store write panicked"))));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn reply(self: Box<Self>, failure: Option<&str>) {
        let result = match (failure, self.result) {
            (None, Some(result)) => result.map_err(StoreError::from),
            (Some(failure), _) => Err(StoreError::new(format!("the write was not committed: {failure}"))),
            (None, None) => Err(StoreError::new("the write did not run")),
        };
        // The caller may have gone away (its request was cancelled): nothing to tell.
        let _ = self.reply.send(result);
    }
}

/// The handle tasks queue writes on. Cloning shares the writer; its task ends and
/// the connection closes when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct Writer {
    handle: Arc<Handle>,
}

/// Tells the writer's task to finish once the last [`Writer`] is gone.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

struct Shared {
    /// The write connection: only the writer's task uses it.
    connection: Mutex<Connection>,
    /// Writes waiting for the next batch; `None` once the writer's task has ended.
    queue: Mutex<Option<Vec<Box<dyn Job>>>>,
    /// Rings when a write is queued (or the last handle is dropped).
    wake: Notify,
    closed: AtomicBool,
    /// A second connection on the file, for checkpoints beside the writes.
    checkpointer: Mutex<Connection>,
    /// Where the checkpoint is: `CHECKPOINT_IDLE`, `_COPYING` or `_COPIED`.
    checkpoint: AtomicU8,
    /// Transactions committed so far.
    commits: AtomicU64,
    /// Frames in the WAL after the last commit.
    wal_frames: AtomicI32,
    /// The database file, to sync what a checkpoint copied beside the writes.
    file: Option<&'static File>,
}

impl Writer {
    /// Starts the writer's task on the current runtime, with `connection` for the
    /// writes and `checkpointer`, on the same file, for checkpoints beside them.
    pub(crate) fn start(connection: Connection, checkpointer: Connection) -> Self {
        connection.wal_hook(Some(note_wal_frames));
        let file = connection.path().filter(|path| !path.is_empty()).and_then(|path| {
            database_file(Path::new(path))
                .inspect_err(|error| tracing::warn!(%error, "cannot open the SQLite file to sync it"))
                .ok()
        });
        let shared = Arc::new(Shared {
            connection: Mutex::new(connection),
            queue: Mutex::new(Some(Vec::new())),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            checkpointer: Mutex::new(checkpointer),
            checkpoint: AtomicU8::new(CHECKPOINT_IDLE),
            commits: AtomicU64::new(0),
            wal_frames: AtomicI32::new(0),
            file,
        });
        tokio::spawn(Arc::clone(&shared).run());
        Self { handle: Arc::new(Handle { shared }) }
    }

    /// How many transactions the writer has committed.
    #[cfg(test)]
    pub(crate) fn commits(&self) -> u64 {
        self.handle.shared.commits.load(Ordering::Relaxed)
    }

    /// Runs `operation` in the next batch and returns its result once the batch has
    /// committed. An `Err` from `operation` rolls back its own changes only.
    pub(crate) async fn write<T, F>(&self, operation: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> WriteResult<T> + Send + 'static,
    {
        self.queue_write(true, operation).await
    }

    /// [`Self::write`] for an operation whose only write is one statement, with no
    /// fallible step after it: SQLite undoes a failed statement by itself, so it needs
    /// no savepoint (two statements fewer on the writer's path).
    pub(crate) async fn write_one<T, F>(&self, operation: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> WriteResult<T> + Send + 'static,
    {
        self.queue_write(false, operation).await
    }

    async fn queue_write<T, F>(&self, savepoint: bool, operation: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> WriteResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let shared = &self.handle.shared;
        let job = Box::new(Pending { savepoint, operation: Some(operation), result: None, reply });
        lock(&shared.queue)
            .as_mut()
            .ok_or_else(|| StoreError::new("the SQLite writer has stopped"))?
            .push(job);
        shared.wake.notify_one();
        answer.await.map_err(|_| StoreError::new("the SQLite writer dropped a write"))?
    }
}

/// Ends the queue when the writer's task ends, because the last handle is gone or
/// because its runtime shut down: what is still queued is dropped (its callers hear
/// that the writer dropped their write), and later writes are refused, rather than
/// waiting for a task that will not run again.
struct Stopped(Arc<Shared>);

impl Drop for Stopped {
    fn drop(&mut self) {
        drop(lock(&self.0.queue).take());
    }
}

impl Shared {
    /// The writer's task. Once woken it steps aside until its worker thread has run
    /// every other task that was ready (`yield_now` defers it until then), so what
    /// they queue meanwhile joins the batch; then it commits everything queued, inline
    /// on this thread. Under load, batches grow while the worker does other useful
    /// work, with no thread to wake or to wait for; alone, a write commits at once.
    async fn run(self: Arc<Self>) {
        let _stopped = Stopped(Arc::clone(&self));
        loop {
            self.wake.notified().await;
            tokio::task::yield_now().await;
            loop {
                let batch = lock(&self.queue).as_mut().map(std::mem::take).unwrap_or_default();
                let idle = batch.is_empty();
                let checkpoint_due = !idle && self.commit_or_wait(batch).await;
                self.checkpoint(checkpoint_due).await;
                if idle {
                    break;
                }
            }
            if self.closed.load(Ordering::Acquire) && lock(&self.queue).as_ref().is_none_or(Vec::is_empty) {
                return;
            }
        }
    }

    /// Commits `batch`; `true` when the WAL has grown enough for a checkpoint.
    async fn commit_or_wait(self: &Arc<Self>, batch: Vec<Box<dyn Job>>) -> bool {
        match self.commit_batch(batch, Duration::ZERO) {
            Ok(due) => due,
            // Another process holds the write lock (`tessera users`, a second server):
            // wait for it on a blocking thread, not on an async worker.
            Err(batch) => self
                .blocking(move |shared| match shared.commit_batch(batch, BUSY_TIMEOUT) {
                    Ok(due) => due,
                    Err(batch) => {
                        batch.into_iter().for_each(|job| job.reply(Some("the database is locked")));
                        false
                    }
                })
                .await
                .unwrap_or(false),
        }
    }

    /// Keeps the WAL bounded, in two steps that each sync the WAL and then the file,
    /// as SQLite's own PASSIVE checkpoint does. Once the WAL is `due`, a checkpoint on
    /// a second connection copies it into the file while writes go on. It cannot copy
    /// what is written meanwhile, and SQLite starts the WAL over only once all of it
    /// has been copied; so when it is done, writes wait for one more checkpoint on the
    /// write connection, which has only that remainder to copy.
    ///
    /// SQLite syncs the file only at a checkpoint that reaches the WAL's end, which
    /// one beside the writes hardly ever does: the sync the writes waited for used to
    /// flush every page copied since the last one (tens of milliseconds for the
    /// scattered index pages of refresh rotations). So the first step syncs the file
    /// itself after each pass, and passes again over what was written meanwhile
    /// until that is little; the writes then wait for about a hundred frames.
    async fn checkpoint(self: &Arc<Self>, due: bool) {
        match self.checkpoint.load(Ordering::Acquire) {
            CHECKPOINT_COPIED => {
                let remainder = self.blocking(|shared| passive_checkpoint(&lock(&shared.connection))).await;
                self.checkpoint.store(CHECKPOINT_IDLE, Ordering::Release);
                if let Some(Err(error)) = remainder {
                    tracing::warn!(%error, "SQLite checkpoint failed");
                }
            }
            CHECKPOINT_IDLE if due => {
                self.checkpoint.store(CHECKPOINT_COPYING, Ordering::Release);
                let shared = Arc::clone(self);
                drop(tokio::task::spawn_blocking(move || {
                    shared.catch_up();
                    shared.checkpoint.store(CHECKPOINT_COPIED, Ordering::Release);
                    // The remainder is copied at the next batch, or now if none comes.
                    shared.wake.notify_one();
                }));
            }
            _ => {}
        }
    }

    /// The first step of [`Self::checkpoint`], on a blocking thread beside the writes.
    fn catch_up(&self) {
        let checkpointer = lock(&self.checkpointer);
        for _ in 0..CATCH_UP_PASSES {
            let copied = match passive_checkpoint(&checkpointer) {
                Ok(copied) => copied,
                Err(error) => {
                    tracing::warn!(%error, "SQLite checkpoint failed");
                    return;
                }
            };
            // Only speed depends on this sync: SQLite still syncs the file itself
            // before it starts the WAL over.
            if let Some(Err(error)) = self.file.map(File::sync_data) {
                tracing::warn!(%error, "cannot sync the SQLite file");
                return;
            }
            let written = self.wal_frames.load(Ordering::Acquire);
            if written.saturating_sub(copied) <= REMAINDER_FRAMES {
                return;
            }
        }
    }

    /// Runs `f` on a blocking thread and waits for it; `None` if it panicked (any
    /// batch it held was dropped with its reply senders, so its callers hear of it).
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Self) -> T + Send + 'static,
    ) -> Option<T> {
        let shared = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&shared)).await.ok()
    }

    /// Commits `batch` (in transactions of at most [`MAX_BATCH`]), waiting at most
    /// `busy_timeout` for another process's write lock: `Ok(true)` when the WAL has
    /// grown enough for a checkpoint, `Err` with what is left when the wait ran out.
    fn commit_batch(
        &self,
        mut batch: Vec<Box<dyn Job>>,
        busy_timeout: Duration,
    ) -> Result<bool, Vec<Box<dyn Job>>> {
        let connection = lock(&self.connection);
        // The WAL hook sets it during each COMMIT below, on this thread, and nothing
        // else runs on this thread until it is read.
        WAL_FRAMES.set(0);
        if let Err(error) = connection.busy_timeout(busy_timeout) {
            tracing::warn!(%error, "SQLite writer cannot set its busy timeout");
        }
        while !batch.is_empty() {
            let rest = batch.split_off(batch.len().min(MAX_BATCH));
            match commit(&connection, batch) {
                Ok(committed) => {
                    if committed {
                        self.commits.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(mut waiting) => {
                    waiting.extend(rest);
                    return Err(waiting);
                }
            }
            batch = rest;
        }
        let frames = WAL_FRAMES.get();
        if frames > 0 {
            self.wal_frames.store(frames, Ordering::Release);
        }
        Ok(frames >= CHECKPOINT_FRAMES)
    }
}

/// A lock whose holder may have panicked: every holder leaves its data consistent
/// (the queue is only pushed to and taken; a write's panic is caught inside `run`).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Copies what no reader still needs from the WAL into the file (what SQLite's
/// automatic checkpoint does); returns how many of the WAL's frames are in the file.
fn passive_checkpoint(connection: &Connection) -> rusqlite::Result<c_int> {
    // Its columns: whether it was blocked, frames in the WAL, frames copied.
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(2))
}

/// The database file at `path`, opened once per process, only to sync it. It is
/// never closed: closing any descriptor of a file drops every POSIX lock that the
/// process holds on the file, SQLite's own included (SQLite defers the closes of
/// its own descriptors for that reason). Known by device and inode, so a file made
/// anew at the same path is opened anew.
fn database_file(path: &Path) -> std::io::Result<&'static File> {
    static FILES: OnceLock<Mutex<HashMap<(u64, u64), &'static File>>> = OnceLock::new();
    // `stat`, not `open`: a second descriptor of the same file must not be made
    // (and closed) when the process has one already.
    let metadata = std::fs::metadata(path)?;
    let mut files = lock(FILES.get_or_init(Mutex::default));
    match files.entry((metadata.dev(), metadata.ino())) {
        Entry::Occupied(known) => Ok(known.get()),
        Entry::Vacant(slot) => Ok(*slot.insert(Box::leak(Box::new(File::open(path)?)))),
    }
}

fn statement(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([]).map(drop)
}

/// Runs one batch in one transaction and replies to every job; `true` when it committed.
/// `Err` gives the batch back, untouched, when another process holds the file's write
/// lock and the connection's busy timeout ran out.
fn commit(connection: &Connection, batch: Vec<Box<dyn Job>>) -> Result<bool, Vec<Box<dyn Job>>> {
    // IMMEDIATE takes the write lock first, so no statement of the batch can fail on
    // a lock upgrade.
    if let Err(error) = statement(connection, "BEGIN IMMEDIATE") {
        if error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) {
            return Err(batch);
        }
        let failure = error.to_string();
        batch.into_iter().for_each(|job| job.reply(Some(&failure)));
        return Ok(false);
    }
    let mut ran: Vec<Box<dyn Job>> = Vec::with_capacity(batch.len());
    for mut job in batch {
        let closed = if !job.needs_savepoint() {
            // A failed single statement was undone by SQLite; the transaction goes on
            // unless SQLite ended it (checked below).
            job.run(connection);
            false
        } else if statement(connection, "SAVEPOINT op").is_ok() && job.run(connection) {
            statement(connection, "RELEASE op").is_err()
        } else {
            // Undo this job's changes only, keeping the batch's transaction open.
            statement(connection, "ROLLBACK TO op")
                .and_then(|()| statement(connection, "RELEASE op"))
                .is_err()
        };
        if closed || connection.is_autocommit() {
            // SQLite ended the whole transaction (an I/O or full-disk error rolls it
            // back), or the savepoints went astray: what ran before is lost. Tell
            // them, and go on with the rest in a new transaction.
            if !connection.is_autocommit() {
                let _ = statement(connection, "ROLLBACK");
            }
            let failure = "the batch's transaction was rolled back";
            ran.drain(..).for_each(|job| job.reply(Some(failure)));
            job.reply(Some(failure));
            if let Err(error) = statement(connection, "BEGIN IMMEDIATE") {
                tracing::error!(%error, "SQLite writer cannot begin a transaction");
                // The remaining jobs are dropped with their reply senders: their
                // callers get an error.
                return Ok(false);
            }
            continue;
        }
        ran.push(job);
    }
    match statement(connection, "COMMIT") {
        Ok(()) => {
            ran.into_iter().for_each(|job| job.reply(None));
            Ok(true)
        }
        Err(error) => {
            let failure = error.to_string();
            let _ = statement(connection, "ROLLBACK");
            ran.into_iter().for_each(|job| job.reply(Some(&failure)));
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rusqlite::{Connection, params};

    use super::{WriteError, Writer, lock, oneshot};

    /// A writer on a fresh file with `t (k TEXT PRIMARY KEY)`, and the file's path.
    fn writer(name: &str) -> (Writer, String) {
        let path = std::env::temp_dir().join(format!("tessera-writer-{name}-{}.db", std::process::id()));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let path = path.display().to_string();
        let connection = Connection::open(&path).unwrap();
        connection.pragma_update(None, "journal_mode", "WAL").unwrap();
        connection.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY)").unwrap();
        (Writer::start(connection, Connection::open(&path).unwrap()), path)
    }

    fn insert(key: &'static str) -> impl FnOnce(&Connection) -> Result<usize, WriteError> + Send + 'static {
        move |c| {
            Ok(c.prepare_cached("INSERT INTO t (k) VALUES (?1) ON CONFLICT DO NOTHING")?.execute([key])?)
        }
    }

    fn keys(path: &str) -> Vec<String> {
        let connection = Connection::open(path).unwrap();
        let mut select = connection.prepare("SELECT k FROM t ORDER BY k").unwrap();
        select.query_map([], |row| row.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    }

    /// The writer held busy by a write that waits for [`Held::release_once_queued`], so
    /// that what is queued meanwhile forms one batch, however slow the machine is.
    struct Held {
        writer: Writer,
        release: std::sync::mpsc::Sender<()>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Held {
        /// Lets the held write finish once `writes` more are queued behind it.
        async fn release_once_queued(self, writes: usize) {
            while lock(&self.writer.handle.shared.queue).as_ref().map_or(0, Vec::len) < writes {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            self.release.send(()).unwrap();
            self.task.await.unwrap();
        }
    }

    /// Returns once the writer is inside a write that waits to be released.
    async fn hold(writer: &Writer) -> Held {
        let busy = writer.clone();
        let (started, has_started) = oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let task = tokio::spawn(async move {
            busy.write(move |_| {
                started.send(()).unwrap();
                released.recv_timeout(Duration::from_secs(30)).expect("released");
                Ok(())
            })
            .await
            .unwrap();
        });
        has_started.await.unwrap();
        Held { writer: writer.clone(), release, task }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_rolls_back_only_itself() {
        let (writer, path) = writer("failing");
        let held = hold(&writer).await;
        let before = writer.commits();
        let a = tokio::spawn({
            let w = writer.clone();
            async move { w.write(insert("a")).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let b = tokio::spawn({
            let w = writer.clone();
            async move {
                w.write(|c| {
                    c.execute("INSERT INTO t (k) VALUES ('b')", [])?;
                    // A statement fails after `b` was written: `b` must go too.
                    c.execute("INSERT INTO missing (k) VALUES ('b')", params![])?;
                    Ok(())
                })
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let c = tokio::spawn({
            let w = writer.clone();
            async move { w.write(insert("c")).await }
        });
        held.release_once_queued(3).await;
        assert_eq!(a.await.unwrap().unwrap(), 1);
        assert!(b.await.unwrap().is_err(), "the failing write reports its error");
        assert_eq!(c.await.unwrap().unwrap(), 1);
        assert_eq!(writer.commits() - before, 2, "the three writes shared one commit");
        assert_eq!(keys(&path), ["a", "c"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_single_statement_write_undoes_itself_without_a_savepoint() {
        let (writer, path) = writer("single");
        writer.write(insert("a")).await.unwrap();
        let held = hold(&writer).await;
        let before = writer.commits();
        let first = tokio::spawn({
            let w = writer.clone();
            async move { w.write_one(insert("b")).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let failing = tokio::spawn({
            let w = writer.clone();
            // Inserts `x`, then fails on the existing `a`: the statement must leave no `x`.
            async move { w.write_one(|c| Ok(c.execute("INSERT INTO t (k) VALUES ('x'), ('a')", [])?)).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let last = tokio::spawn({
            let w = writer.clone();
            async move { w.write_one(insert("c")).await }
        });
        held.release_once_queued(3).await;
        assert_eq!(first.await.unwrap().unwrap(), 1);
        assert!(failing.await.unwrap().is_err());
        assert_eq!(last.await.unwrap().unwrap(), 1);
        assert_eq!(writer.commits() - before, 2, "the three writes shared one commit");
        assert_eq!(keys(&path), ["a", "b", "c"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_write_fails_alone_and_the_writer_goes_on() {
        let (writer, path) = writer("panicking");
        let held = hold(&writer).await;
        let a = tokio::spawn({
            let w = writer.clone();
            async move { w.write(insert("a")).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let b = tokio::spawn({
            let w = writer.clone();
            async move {
                w.write(|c| -> Result<(), WriteError> {
                    c.execute("INSERT INTO t (k) VALUES ('b')", [])?;
                    panic!("boom")
                })
                .await
            }
        });
        held.release_once_queued(2).await;
        assert_eq!(a.await.unwrap().unwrap(), 1);
        assert!(b.await.unwrap().is_err());
        assert_eq!(writer.write(insert("c")).await.unwrap(), 1);
        assert_eq!(keys(&path), ["a", "c"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_writes_in_one_batch_see_one_winner() {
        let (writer, path) = writer("race");
        for round in 0..5 {
            let held = hold(&writer).await;
            let racers: Vec<_> = (0..50)
                .map(|_| {
                    let w = writer.clone();
                    tokio::spawn(async move { w.write(insert(["r0", "r1", "r2", "r3", "r4"][round])).await })
                })
                .collect();
            held.release_once_queued(50).await;
            let mut winners = 0;
            for racer in racers {
                winners += racer.await.unwrap().unwrap();
            }
            assert_eq!(winners, 1, "round {round}");
        }
        assert_eq!(keys(&path), ["r0", "r1", "r2", "r3", "r4"]);
    }

    #[tokio::test]
    async fn the_writer_checkpoints_so_the_wal_stays_bounded() {
        let (writer, path) = writer("checkpoint");
        for i in 0..3000 {
            // One commit each: at least one WAL frame each.
            writer
                .write(move |c| Ok(c.execute("INSERT INTO t (k) VALUES (?1)", [format!("k{i}")])?))
                .await
                .unwrap();
        }
        let wal = std::fs::metadata(format!("{path}-wal")).unwrap().len();
        let frame = 4096 + 24;
        assert!(wal < 1200 * frame, "the WAL was restarted after checkpoints ({wal} bytes)");
        assert_eq!(keys(&path).len(), 3000);
    }

    #[tokio::test]
    async fn a_write_is_visible_to_other_connections_when_it_returns() {
        let (writer, path) = writer("visible");
        for key in ["a", "b", "c"] {
            writer.write(insert(key)).await.unwrap();
            assert!(keys(&path).contains(&key.to_owned()), "{key} committed before the reply");
        }
    }

    /// On a one-thread runtime, so that a writer blocking its thread would stop the
    /// ticker too.
    #[tokio::test]
    async fn a_write_waits_for_another_process_lock_off_the_async_thread() {
        let (writer, path) = writer("locked");
        let (locked, lock_taken) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            // Another process's writer: holds the file's write lock for 300 ms.
            let other = Connection::open(&path).unwrap();
            other.execute_batch("BEGIN IMMEDIATE; INSERT INTO t (k) VALUES ('other')").unwrap();
            locked.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            other.execute_batch("COMMIT").unwrap();
            path
        });
        lock_taken.recv().unwrap();
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let ticker = tokio::spawn({
            let ticks = std::sync::Arc::clone(&ticks);
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        assert_eq!(writer.write(insert("mine")).await.unwrap(), 1);
        ticker.abort();
        let path = holder.join().unwrap();
        let ticked = ticks.load(std::sync::atomic::Ordering::Relaxed);
        assert!(ticked >= 10, "the runtime ran on while the write waited ({ticked} ticks)");
        assert_eq!(keys(&path), ["mine", "other"]);
    }

    #[test]
    fn writes_fail_rather_than_hang_once_the_writers_runtime_is_gone() {
        let first = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (writer, path) = first.block_on(async { writer("gone") });
        first.block_on(writer.write(insert("a"))).unwrap();
        drop(first);
        let second = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let outcome = second.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), writer.write(insert("b"))).await
        });
        assert!(matches!(outcome, Ok(Err(_))), "the write failed at once: {outcome:?}");
        assert_eq!(keys(&path), ["a"]);
    }
}
