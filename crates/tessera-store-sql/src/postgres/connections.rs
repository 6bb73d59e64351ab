//! The PostgreSQL store's connections: sqlx's `PgConnection`s in a deadpool pool.
//!
//! Why not sqlx's own `PgPool`: it tests every connection by a round trip as it comes
//! back (a `Sync` and its `ReadyForQuery`), in a task it spawns for that, after every
//! statement. That is a second round trip, and a wake-up on both sides, for each of the
//! one-statement hot paths (a code's redemption, a refresh token's rotation): measured
//! here at about a fifth of the redemptions a second (bench/run.sh, STORE=postgres).
//! sqlx does it as a band-aid for connections left mid-statement by a cancelled future.
//! Here the same test is made only where it is needed:
//! - after a statement that failed, or whose future was dropped before it finished
//!   (a client that went away mid-request), and after a transaction that ended without
//!   its `COMMIT` (sqlx queues the `ROLLBACK`; the test sends it at once, so no row
//!   lock outlives the request): the connection is tested as it is let go, and dropped
//!   if the test fails;
//! - before a connection that sat idle for [`IDLE_BEFORE_PING`] is used again, so one
//!   that died with the server (a restart, a failover) is replaced, not handed out.
//!
//! Statements run through `&Connections` as through `&PgPool` (it is an sqlx
//! [`Executor`]: each statement takes a connection for itself); a transaction takes
//! one with [`Connections::lease`] and [`Lease::begin`].

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, RecycleResult};
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt as _};
use sqlx::postgres::{PgConnectOptions, PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Connection as _, Either, Error, Execute, Executor, PgConnection, Postgres, SqlStr};

/// How long a pooled connection may sit unused before it is tested on its way out.
const IDLE_BEFORE_PING: Duration = Duration::from_millis(100);

/// A bounded pool of connections to one database.
#[derive(Clone)]
pub(crate) struct Connections {
    pool: managed::Pool<Connector>,
    /// The most a statement waits for a connection, connecting included.
    acquire_timeout: Duration,
}

impl fmt::Debug for Connections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connections").field("status", &self.pool.status()).finish()
    }
}

/// Opens and tests connections for the pool.
struct Connector {
    options: PgConnectOptions,
}

/// A pooled connection, and whether it was let go in a known state.
pub(crate) struct Pooled {
    raw: PgConnection,
    /// `false` while a statement or a transaction is under way, and after one that
    /// failed: such a connection is tested before anyone uses it again.
    settled: bool,
}

impl managed::Manager for Connector {
    type Type = Pooled;
    type Error = Error;

    async fn create(&self) -> Result<Pooled, Error> {
        Ok(Pooled { raw: PgConnection::connect_with(&self.options).await?, settled: true })
    }

    async fn recycle(&self, pooled: &mut Pooled, metrics: &Metrics) -> RecycleResult<Error> {
        if !pooled.settled || metrics.last_used() >= IDLE_BEFORE_PING {
            pooled.raw.ping().await?;
            pooled.settled = true;
        }
        Ok(())
    }
}

impl Connections {
    /// A pool of at most `max_connections` to the database `options` name. Connects
    /// lazily: the first statement opens the first connection.
    pub(crate) fn new(
        options: PgConnectOptions,
        max_connections: usize,
        acquire_timeout: Duration,
    ) -> Result<Self, Error> {
        let pool = managed::Pool::builder(Connector { options })
            .max_size(max_connections)
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|error| Error::Configuration(error.into()))?;
        Ok(Self { pool, acquire_timeout })
    }

    /// A connection for the caller alone until the lease is dropped. Waits at most the
    /// acquire timeout in all (a free connection, testing it, or opening a new one):
    /// while PostgreSQL is down a request fails fast, as `PoolTimedOut` or the
    /// connect error.
    pub(crate) async fn lease(&self) -> Result<Lease, Error> {
        let pooled = match tokio::time::timeout(self.acquire_timeout, self.pool.get()).await {
            Ok(Ok(pooled)) => pooled,
            Ok(Err(managed::PoolError::Backend(error))) => return Err(error),
            Ok(Err(managed::PoolError::Closed)) => return Err(Error::PoolClosed),
            Ok(Err(_)) | Err(_) => return Err(Error::PoolTimedOut),
        };
        Ok(Lease { pooled: Some(pooled) })
    }

    /// Closes the pool: idle connections now, each with a goodbye to the server
    /// (`Terminate`), leased ones as they are let go.
    pub(crate) async fn close(&self) {
        let idle = self.pool.retain(|_, _| false).removed;
        self.pool.close();
        for pooled in idle {
            let _ = pooled.raw.close().await;
        }
    }
}

/// A connection taken from the pool. Let go unsettled (see [`Pooled::settled`]), it is
/// tested at once in a task of its own, which also flushes a queued `ROLLBACK`.
pub(crate) struct Lease {
    pooled: Option<Object<Connector>>,
}

impl Lease {
    /// The leased connection (only `Drop` takes it out).
    fn pooled(&mut self) -> Result<&mut Pooled, Error> {
        self.pooled.as_deref_mut().ok_or(Error::PoolClosed)
    }

    /// The connection for one statement, unsettled until [`Self::finish`] sees it succeed.
    fn start(&mut self) -> Result<&mut PgConnection, Error> {
        let pooled = self.pooled()?;
        pooled.settled = false;
        Ok(&mut pooled.raw)
    }

    /// Settles the connection if its statement succeeded, and passes the result on.
    fn finish<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if let Ok(pooled) = self.pooled() {
            pooled.settled = result.is_ok();
        }
        result
    }

    /// Begins a transaction on this connection. Until [`Transaction::commit`] succeeds
    /// the connection is unsettled: a transaction dropped without it is rolled back as
    /// the lease is let go.
    pub(crate) async fn begin(&mut self) -> Result<Transaction<'_>, Error> {
        let Pooled { raw, settled } = self.pooled()?;
        *settled = false;
        Ok(Transaction { inner: raw.begin().await?, settled })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mut pooled) = self.pooled.take() else { return };
        if pooled.settled {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            drop(Object::take(pooled));
            return;
        };
        runtime.spawn(async move {
            match pooled.raw.ping().await {
                Ok(()) => pooled.settled = true,
                Err(error) => {
                    tracing::debug!(%error, "a connection let go mid-statement failed its test: dropped");
                    drop(Object::take(pooled));
                }
            }
        });
    }
}

/// A transaction on a leased connection: derefs to the connection, as sqlx's does.
pub(crate) struct Transaction<'c> {
    inner: sqlx::Transaction<'c, Postgres>,
    settled: &'c mut bool,
}

impl Transaction<'_> {
    /// Commits; the connection is settled again only if the `COMMIT` was answered.
    pub(crate) async fn commit(self) -> Result<(), Error> {
        let Self { inner, settled } = self;
        inner.commit().await?;
        *settled = true;
        Ok(())
    }
}

impl Deref for Transaction<'_> {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.inner
    }
}

impl DerefMut for Transaction<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.inner
    }
}

/// A statement on `&Connections` takes a connection for itself, as on `&PgPool`.
impl<'p> Executor<'p> for &'p Connections {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        // Collected before the lease goes: the store reads small results whole.
        let all = async move {
            let mut lease = match self.lease().await {
                Ok(lease) => lease,
                Err(error) => return vec![Err(error)],
            };
            let results: Vec<_> = match lease.start() {
                Ok(raw) => raw.fetch_many(query).collect().await,
                Err(error) => return vec![Err(error)],
            };
            if results.iter().all(Result::is_ok) {
                let _ = lease.finish(Ok(()));
            }
            results
        };
        Box::pin(stream::once(all).flat_map(stream::iter))
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<PgRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        Box::pin(async move {
            let mut lease = self.lease().await?;
            let result = lease.start()?.fetch_optional(query).await;
            lease.finish(result)
        })
    }

    fn fetch_all<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Vec<PgRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        Box::pin(async move {
            let mut lease = self.lease().await?;
            let result = lease.start()?.fetch_all(query).await;
            lease.finish(result)
        })
    }

    fn fetch_one<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<PgRow, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        Box::pin(async move {
            let mut lease = self.lease().await?;
            let result = lease.start()?.fetch_one(query).await;
            lease.finish(result)
        })
    }

    fn execute<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<PgQueryResult, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        Box::pin(async move {
            let mut lease = self.lease().await?;
            let result = lease.start()?.execute(query).await;
            lease.finish(result)
        })
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement, Error>>
    where
        'p: 'e,
    {
        Box::pin(async move {
            let mut lease = self.lease().await?;
            let result = lease.start()?.prepare_with(sql, parameters).await;
            lease.finish(result)
        })
    }
}

/// On the test server (`TESSERA_TEST_POSTGRES`, skipped when unset): what sqlx's pool
/// made sure of by testing every connection, this pool keeps without it.
#[cfg(test)]
mod tests {
    use std::str::FromStr as _;
    use std::time::Duration;

    use sqlx::Row as _;
    use sqlx::postgres::PgConnectOptions;

    use super::Connections;

    fn pool_of(size: usize) -> Option<Connections> {
        let Ok(url) = std::env::var("TESSERA_TEST_POSTGRES") else {
            eprintln!("TESSERA_TEST_POSTGRES is not set: skipping");
            return None;
        };
        let options = PgConnectOptions::from_str(&url).ok()?;
        Connections::new(options, size, Duration::from_secs(5)).ok()
    }

    async fn backend_pid(pool: &Connections) -> i32 {
        sqlx::query("SELECT pg_backend_pid() AS pid").fetch_one(pool).await.unwrap().get("pid")
    }

    /// Waits up to two seconds for `condition`, checking every 20 ms.
    async fn eventually(mut condition: impl AsyncFnMut() -> bool) -> bool {
        for _ in 0..100 {
            if condition().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_transaction_dropped_without_commit_releases_its_row_locks_at_once() {
        let Some(pool) = pool_of(2) else { return };
        let id = i64::from(std::process::id()) * 1000
            + i64::from(std::time::UNIX_EPOCH.elapsed().unwrap().subsec_millis());
        sqlx::query("CREATE TABLE IF NOT EXISTS tessera_lock_probe (id BIGINT PRIMARY KEY)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO tessera_lock_probe VALUES ($1)").bind(id).execute(&pool).await.unwrap();
        {
            let mut lease = pool.lease().await.unwrap();
            let mut tx = lease.begin().await.unwrap();
            sqlx::query("SELECT id FROM tessera_lock_probe WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            // Dropped here without COMMIT: an early return in a store method.
        }
        // Nobody uses the pool now, so nothing would flush the queued ROLLBACK for
        // the pool's sake: the lease's own test must, or the row stays locked.
        let other = pool_of(1).unwrap();
        let unlocked = eventually(async || {
            sqlx::query("SELECT id FROM tessera_lock_probe WHERE id = $1 FOR UPDATE NOWAIT")
                .bind(id)
                .fetch_optional(&other)
                .await
                .is_ok()
        })
        .await;
        assert!(unlocked, "the dropped transaction's lock was released");
        sqlx::query("DELETE FROM tessera_lock_probe WHERE id = $1").bind(id).execute(&other).await.unwrap();
    }

    #[tokio::test]
    async fn a_statement_cancelled_mid_flight_leaves_no_half_read_connection_behind() {
        let Some(pool) = pool_of(1) else { return };
        for round in 0..5 {
            // The client went away while the statement ran: its future is dropped.
            let slow = sqlx::query("SELECT pg_sleep(0.2), 1 AS late").fetch_one(&pool);
            assert!(tokio::time::timeout(Duration::from_millis(20), slow).await.is_err());
            // The one connection answers the next statement with its own answer.
            let row = sqlx::query("SELECT $1::INT AS n").bind(round).fetch_one(&pool).await.unwrap();
            assert_eq!(row.get::<i32, _>("n"), round);
        }
    }

    #[tokio::test]
    async fn a_connection_that_died_while_idle_is_replaced_not_handed_out() {
        let Some(pool) = pool_of(1) else { return };
        let first = backend_pid(&pool).await;
        let killer = pool_of(1).unwrap();
        sqlx::query("SELECT pg_terminate_backend($1)").bind(first).execute(&killer).await.unwrap();
        tokio::time::sleep(super::IDLE_BEFORE_PING + Duration::from_millis(50)).await;
        let second = backend_pid(&pool).await;
        assert_ne!(first, second, "a new connection replaced the dead one");
    }

    #[tokio::test]
    async fn forty_parallel_statements_share_a_pool_of_four() {
        let Some(pool) = pool_of(4) else { return };
        let answers = futures_util::future::join_all((0..40).map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                sqlx::query("SELECT $1::INT AS n").bind(i).fetch_one(&pool).await.unwrap().get::<i32, _>("n")
            })
        }))
        .await;
        let answers: Vec<i32> = answers.into_iter().map(Result::unwrap).collect();
        assert_eq!(answers, (0..40).collect::<Vec<_>>());
        assert!(pool.pool.status().size <= 4);
    }

    #[tokio::test]
    async fn a_server_that_refuses_connections_fails_fast() {
        let options = PgConnectOptions::from_str("postgres://postgres@127.0.0.1:1/none").unwrap();
        let pool = Connections::new(options, 2, Duration::from_secs(5)).unwrap();
        let started = std::time::Instant::now();
        assert!(sqlx::query("SELECT 1").execute(&pool).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(1), "refused at once, not after the timeout");
    }
}
