//! What differs between SQLite and PostgreSQL: URLs, pool size, migrations, purging.

use sqlx::migrate::{Migration, MigrationType, Migrator};

/// The database behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Tables whose rows expire: table, single-column key, expiry column. Consents never
/// expire and are not listed.
const EXPIRING_TABLES: [(&str, &str, &str); 11] = [
    ("replay_cache", "key", "expires_at"),
    ("revoked_jtis", "jti", "expires_at"),
    ("reference_tokens", "token_hash", "expires_at"),
    ("signing_keys", "generation", "expires_at"),
    ("authorization_codes", "code_hash", "expires_at"),
    // The family's absolute expiry: a used token stays until then, so its reuse is
    // still detected (RFC 9700 §4.14.2) after its idle expiry.
    ("refresh_tokens", "token_hash", "expires_at"),
    ("issued_access_tokens", "jti", "expires_at"),
    ("revoked_grants", "grant_id", "expires_at"),
    ("sessions", "session_hash", "expires_at"),
    ("pending_requests", "key", "expires_at"),
    ("login_failures", "key", "window_ends_at"),
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
            // SQLite has one writer: several connections only queue on its lock, sleeping
            // in busy_timeout back-offs. One connection serves them in order instead.
            Self::Sqlite => 1,
            Self::Postgres => 10,
        }
    }

    pub(crate) fn migrator(self) -> Migrator {
        let (initial, sign_in) = match self {
            Self::Sqlite => (
                include_str!("../migrations/sqlite/0001_initial.sql"),
                include_str!("../migrations/sqlite/0002_sign_in.sql"),
            ),
            Self::Postgres => (
                include_str!("../migrations/postgres/0001_initial.sql"),
                include_str!("../migrations/postgres/0002_sign_in.sql"),
            ),
        };
        let migration = |version, description: &'static str, sql: &'static str| {
            Migration::new(
                version,
                description.into(),
                MigrationType::Simple,
                sqlx::SqlSafeStr::into_sql_str(sql),
                false,
            )
        };
        Migrator::with_migrations(vec![migration(1, "initial", initial), migration(2, "sign_in", sign_in)])
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
            .map(|(table, key, expiry)| {
                format!(
                    "DELETE FROM {table} WHERE {key} IN \
                     (SELECT {key} FROM {table} WHERE {expiry} <= $1 LIMIT $2{lock})"
                )
            })
            .collect()
    }
}
