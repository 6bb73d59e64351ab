//! What differs between SQLite and PostgreSQL: URLs, pool size, migrations, purging.

use sqlx::migrate::{Migration, MigrationType, Migrator};

/// The database behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Tables with an `expires_at` column, and their key column.
const EXPIRING_TABLES: [(&str, &str); 4] = [
    ("replay_cache", "key"),
    ("revoked_jtis", "jti"),
    ("reference_tokens", "token_hash"),
    ("signing_keys", "generation"),
];

impl Backend {
    /// The backend a URL names.
    #[must_use]
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    /// The URL to connect with: a SQLite file is created when missing.
    pub(crate) fn connect_url(self, url: &str) -> String {
        match self {
            Self::Sqlite if !url.contains("mode=") => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}mode=rwc")
            }
            _ => url.to_owned(),
        }
    }

    pub(crate) fn max_connections(self) -> u32 {
        match self {
            // One writer at a time anyway; a few readers beside it under WAL.
            Self::Sqlite => 4,
            Self::Postgres => 10,
        }
    }

    pub(crate) fn migrator(self) -> Migrator {
        let initial = match self {
            Self::Sqlite => include_str!("../migrations/sqlite/0001_initial.sql"),
            Self::Postgres => include_str!("../migrations/postgres/0001_initial.sql"),
        };
        Migrator::with_migrations(vec![Migration::new(
            1,
            "initial".into(),
            MigrationType::Simple,
            sqlx::SqlSafeStr::into_sql_str(initial),
            false,
        )])
    }

    /// One bounded `DELETE` per expiring table. On PostgreSQL, `SKIP LOCKED` lets
    /// several instances purge at once without waiting on (or deadlocking over) the
    /// same rows; SQLite has a single writer, so a plain bounded delete is enough.
    pub(crate) fn purge_statements(self) -> Vec<String> {
        let lock = match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        EXPIRING_TABLES
            .iter()
            .map(|(table, key)| {
                format!(
                    "DELETE FROM {table} WHERE {key} IN \
                     (SELECT {key} FROM {table} WHERE expires_at <= $1 LIMIT $2{lock})"
                )
            })
            .collect()
    }
}
