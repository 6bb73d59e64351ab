//! Test support: a fresh PostgreSQL schema per test, so tests sharing one database
//! never see each other's rows.

use sqlx::{AssertSqlSafe, Connection as _};

/// A schema made for one test, and the URL that points connections at it.
#[derive(Debug)]
pub struct TestSchema {
    pub url: String,
    base_url: String,
    name: String,
}

/// Creates an empty schema on the server at `base_url`.
///
/// # Errors
/// When the server cannot be reached.
pub async fn fresh_postgres_schema(base_url: &str) -> Result<TestSchema, sqlx::Error> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::UNIX_EPOCH.elapsed().map(|d| d.subsec_nanos()).unwrap_or_default();
    let name = format!("t_{}_{n}_{nanos}", std::process::id());
    let mut connection = sqlx::PgConnection::connect(base_url).await?;
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {name}"))).execute(&mut connection).await?;
    connection.close().await?;
    let separator = if base_url.contains('?') { '&' } else { '?' };
    let url = format!("{base_url}{separator}options=-c%20search_path%3D{name}");
    Ok(TestSchema { url, base_url: base_url.to_owned(), name })
}

impl TestSchema {
    /// Drops the schema and everything in it (best effort).
    pub async fn drop(self) {
        if let Ok(mut connection) = sqlx::PgConnection::connect(&self.base_url).await {
            let statement = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
            let _ = sqlx::query(AssertSqlSafe(statement)).execute(&mut connection).await;
            let _ = connection.close().await;
        }
    }
}

/// The sqlx migrator with `backend`'s migrations up to `last_version`: a database as
/// an earlier Tessera left it, to test what a later migration does to its rows.
#[must_use]
pub fn migrator_until(backend: crate::Backend, last_version: i64) -> sqlx::migrate::Migrator {
    backend.migrator_until(last_version)
}
