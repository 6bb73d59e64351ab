//! The PostgreSQL store, shared by many instances: sqlx's `PgConnection`s in a pool of
//! its own (`connections.rs`), and its own schema in PostgreSQL's types (`JSONB`, `TIMESTAMPTZ`, `BOOLEAN`, `BYTEA`; migration
//! 0011). One file per concern, as in `sqlite/` and in core's `store/`.
//!
//! Single-use values are consumed in one statement (`INSERT … ON CONFLICT`,
//! `UPDATE`/`DELETE … RETURNING`) or one transaction that first takes the row it
//! changes, never read-then-write, so racing requests on any number of instances see
//! one winner. The hot paths (a code's redemption, a refresh token's rotation) are one
//! statement when the request is good, a round trip instead of four.

mod batches;
mod clients;
mod codes;
mod connections;
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

use std::str::FromStr as _;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tessera_core::store::StoreResult;

use crate::{Backend, StoreOptions, store_error};
use connections::{Connections, Transaction};

/// The store on PostgreSQL, through its own pool of sqlx connections.
#[derive(Clone)]
pub(crate) struct PgStore {
    pool: Connections,
    /// Good code redemptions and refresh rotations waiting for their batch.
    redemptions: batches::Batches<codes::Redemptions>,
    rotations: batches::Batches<refresh::Rotations>,
    purge_statements: Vec<String>,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`) and applies pending migrations. Safe when
    /// several instances start at once: migrations run under an advisory lock.
    pub(crate) async fn connect(url: &str, options: StoreOptions) -> StoreResult<Self> {
        let backend = Backend::Postgres;
        let connect = PgConnectOptions::from_str(url).map_err(store_error)?;
        // Migrations on a connection of their own, closed when they are done (sqlx's
        // migrator takes a pool: on a bare connection its future is not `Send`).
        let migrating = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(store_error)?;
        let migrated = backend.migrator().run(&migrating).await.map_err(store_error);
        migrating.close().await;
        migrated?;
        let pool = Connections::new(connect, backend.max_connections(), options.acquire_timeout)
            .map_err(store_error)?;
        let (redemptions, rotations) =
            (batches::Batches::new(pool.clone()), batches::Batches::new(pool.clone()));
        Ok(Self { pool, redemptions, rotations, purge_statements: backend.purge_statements() })
    }

    /// Closes the pool.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}
