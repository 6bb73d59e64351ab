//! The PostgreSQL store on sqlx's `PgPool`: shared by many instances, with its own
//! schema in PostgreSQL's types (`JSONB`, `TIMESTAMPTZ`, `BOOLEAN`, `BYTEA`; migration
//! 0011). One file per concern, as in `sqlite/` and in core's `store/`.
//!
//! Single-use values are consumed in one statement (`INSERT … ON CONFLICT`,
//! `UPDATE`/`DELETE … RETURNING`) or one transaction that first takes the row it
//! changes, never read-then-write, so racing requests on any number of instances see
//! one winner. The hot paths (a code's redemption, a refresh token's rotation) are one
//! statement when the request is good, a round trip instead of four.

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
mod rows;
mod sessions;
mod settle;
mod throttle;
mod tokens;
mod users;

use sqlx::Connection as _;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tessera_core::store::StoreResult;

use crate::{Backend, StoreOptions, store_error};

/// How long a pooled connection may sit unused before it is pinged on its way out.
const IDLE_BEFORE_PING: std::time::Duration = std::time::Duration::from_millis(100);

/// The store on PostgreSQL, through a sqlx pool.
#[derive(Clone)]
pub(crate) struct PgStore {
    pool: PgPool,
    purge_statements: Vec<String>,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`) and applies pending migrations. Safe when
    /// several instances start at once: migrations run under an advisory lock.
    pub(crate) async fn connect(url: &str, options: StoreOptions) -> StoreResult<Self> {
        let backend = Backend::Postgres;
        let pool = PgPoolOptions::new()
            .max_connections(backend.max_connections())
            // Fail fast while PostgreSQL is down: a request waits at most this long for
            // a connection (sqlx retries refused connects within it, so a returning
            // server is used within a fraction of it).
            .acquire_timeout(options.acquire_timeout)
            // A connection that died with the server is dropped before use: one that
            // sat idle is pinged first. Not every one, as `test_before_acquire` would:
            // under load connections come back within microseconds, and a ping each
            // time is a second round trip per statement (sqlx also tests each one as
            // it is returned).
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_BEFORE_PING {
                        connection.ping().await?;
                    }
                    Ok(true)
                })
            })
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

/// A transaction on the pool.
type Transaction<'c> = sqlx::Transaction<'c, sqlx::Postgres>;
