//! Group commit for the SQLite store: one thread owns the write connection and runs
//! the write operations queued by every task in one `BEGIN IMMEDIATE … COMMIT`.
//!
//! A commit costs the same file-lock system calls and WAL header writes whether it
//! carries one row or fifty, and rows of one batch share the pages they touch (the
//! tail of each table and of each time index). Each operation runs inside its own
//! `SAVEPOINT`, so one that fails rolls back only itself; its caller hears back only
//! after the `COMMIT`, so nothing is acknowledged that is not committed (at the WAL +
//! `synchronous=NORMAL` level). Operations of one batch run one after another on one
//! connection, and the batch holds the file's write lock, so each single-use
//! statement still sees every earlier write, here or in another process.

use std::cell::Cell;
use std::ffi::c_int;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use rusqlite::Connection;
use tessera_core::store::{StoreError, StoreResult};
use tokio::sync::oneshot;

/// At most this many operations share a commit: bounds how long one batch holds the
/// file's write lock against other processes.
const MAX_BATCH: usize = 256;

/// Times the idle writer yields, looking for work, before it sleeps.
const SPINS: usize = 64;

/// WAL frames past which the writer checkpoints: SQLite's own default
/// (`wal_autocheckpoint`), so the file is synced as often as before.
const CHECKPOINT_FRAMES: c_int = 1000;

thread_local! {
    /// Frames in the WAL after the writer's last commit, from the WAL hook.
    static WAL_FRAMES: Cell<c_int> = const { Cell::new(0) };
}

/// Replaces SQLite's automatic checkpoint, which runs inside `COMMIT`: the writer
/// checkpoints itself once the batch's callers have their replies.
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

/// The handle tasks queue writes on. Cloning shares the thread; the thread and its
/// connection close when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Box<dyn Job>>,
    /// Transactions committed so far.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the tests only"))]
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Starts the writer thread on `connection`.
    pub(crate) fn start(connection: Connection) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel();
        let commits = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&commits);
        std::thread::Builder::new().name("tessera-sqlite-writer".into()).spawn(move || {
            connection.wal_hook(Some(note_wal_frames));
            run(&connection, &jobs, &counter);
        })?;
        Ok(Self { queue, commits })
    }

    /// How many transactions the writer has committed.
    #[cfg(test)]
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
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
        self.queue
            .send(Box::new(Pending { savepoint, operation: Some(operation), result: None, reply }))
            .map_err(|_| StoreError::new("the SQLite writer has stopped"))?;
        answer.await.map_err(|_| StoreError::new("the SQLite writer dropped a write"))?
    }
}

/// The writer thread: waits for work, then commits everything queued by then.
fn run(connection: &Connection, jobs: &mpsc::Receiver<Box<dyn Job>>, commits: &AtomicU64) {
    while let Ok(first) = next(jobs) {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if commit(connection, batch) {
            commits.fetch_add(1, Ordering::Relaxed);
        }
        if WAL_FRAMES.get() >= CHECKPOINT_FRAMES {
            WAL_FRAMES.set(0);
            // PASSIVE, as the automatic checkpoint: copies what no reader still
            // needs, syncing the WAL before and the file after (synchronous=NORMAL).
            if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(%error, "SQLite checkpoint failed");
            }
        }
    }
}

/// The next job. Under load the next write is queued within microseconds of a
/// commit, so yield a few times before sleeping: a sleeping writer costs each
/// sender a futex wake and the writer a context switch.
fn next(jobs: &mpsc::Receiver<Box<dyn Job>>) -> Result<Box<dyn Job>, mpsc::RecvError> {
    for _ in 0..SPINS {
        match jobs.try_recv() {
            Ok(job) => return Ok(job),
            Err(mpsc::TryRecvError::Empty) => std::thread::yield_now(),
            Err(mpsc::TryRecvError::Disconnected) => return Err(mpsc::RecvError),
        }
    }
    jobs.recv()
}

fn statement(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([]).map(drop)
}

/// Runs one batch in one transaction and replies to every job; `true` when it committed.
fn commit(connection: &Connection, batch: Vec<Box<dyn Job>>) -> bool {
    // IMMEDIATE takes the write lock first (waiting `busy_timeout` for another
    // process), so no statement of the batch can fail on a lock upgrade.
    if let Err(error) = statement(connection, "BEGIN IMMEDIATE") {
        let failure = error.to_string();
        batch.into_iter().for_each(|job| job.reply(Some(&failure)));
        return false;
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
                return false;
            }
            continue;
        }
        ran.push(job);
    }
    match statement(connection, "COMMIT") {
        Ok(()) => {
            ran.into_iter().for_each(|job| job.reply(None));
            true
        }
        Err(error) => {
            let failure = error.to_string();
            let _ = statement(connection, "ROLLBACK");
            ran.into_iter().for_each(|job| job.reply(Some(&failure)));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rusqlite::{Connection, params};

    use super::{WriteError, Writer};

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
        (Writer::start(connection).unwrap(), path)
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

    /// Holds the writer thread busy, so that what is queued meanwhile forms one batch.
    async fn hold(writer: &Writer) -> tokio::task::JoinHandle<()> {
        let busy = writer.clone();
        let held = tokio::spawn(async move {
            busy.write(|_| {
                std::thread::sleep(Duration::from_millis(200));
                Ok(())
            })
            .await
            .unwrap();
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        held
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
        held.await.unwrap();
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
        held.await.unwrap();
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
        held.await.unwrap();
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
            held.await.unwrap();
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
}
