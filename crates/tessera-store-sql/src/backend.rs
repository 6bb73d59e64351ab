//! What differs between SQLite and PostgreSQL: pool size, migrations, purging.

use sqlx::migrate::{Migration, MigrationType, Migrator};

/// The database behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Tables whose rows expire: table, single-column key, expiry column. Consents never
/// expire and are not listed.
const EXPIRING_TABLES: [(&str, &str, &str); 12] = [
    ("replay_cache", "key", "expires_at"),
    ("revoked_jtis", "jti", "expires_at"),
    ("reference_tokens", "token_hash", "expires_at"),
    ("signing_keys", "generation", "expires_at"),
    ("authorization_codes", "code_hash", "expires_at"),
    // The family's absolute expiry: a used token stays until then, so its reuse is
    // still detected (RFC 9700 §4.14.2) after its idle expiry.
    ("refresh_tokens", "token_hash", "expires_at"),
    ("revoked_grants", "grant_id", "expires_at"),
    ("sessions", "session_hash", "expires_at"),
    ("pending_requests", "key", "expires_at"),
    ("decoupled_requests", "key", "expires_at"),
    ("login_failures", "key", "window_ends_at"),
    ("poll_pace", "key", "expires_at"),
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

    /// PostgreSQL's pool size. (SQLite has its own read connections and one writer.)
    pub(crate) fn max_connections(self) -> usize {
        match self {
            Self::Sqlite => 1,
            // Measured on two cores with PostgreSQL beside the server (bench/run.sh), on
            // the store's own pool: codes redeemed a second by one instance at 4: 6.2k,
            // 8: 8.1-8.8k, 16: 8.3-8.7k, 32: 7.7k. 8 and 16 are alike; 16 leaves room for
            // the slower statements beside the hot ones. Beyond that PostgreSQL's
            // backends only contend for the same cores.
            Self::Postgres => 16,
        }
    }

    /// The migrations: version, description, SQL. Both backends share the first ten
    /// (each in its own dialect); PostgreSQL then moves to its native types; both then
    /// give device and CIBA requests their own table.
    pub(crate) fn migrations(self) -> Vec<(i64, &'static str, &'static str)> {
        match self {
            Self::Sqlite => vec![
                (1, "initial", include_str!("../migrations/sqlite/0001_initial.sql")),
                (2, "sign_in", include_str!("../migrations/sqlite/0002_sign_in.sql")),
                (3, "grant_carrying_jti", include_str!("../migrations/sqlite/0003_grant_carrying_jti.sql")),
                (
                    4,
                    "refresh_family_start",
                    include_str!("../migrations/sqlite/0004_refresh_family_start.sql"),
                ),
                (6, "sources", include_str!("../migrations/sqlite/0006_sources.sql")),
                (8, "readiness_probe", include_str!("../migrations/sqlite/0008_readiness_probe.sql")),
                (9, "second_factors", include_str!("../migrations/sqlite/0009_second_factors.sql")),
                (10, "poll_pace", include_str!("../migrations/sqlite/0010_poll_pace.sql")),
                (12, "decoupled_requests", include_str!("../migrations/sqlite/0012_decoupled_requests.sql")),
            ],
            Self::Postgres => vec![
                (1, "initial", include_str!("../migrations/postgres/0001_initial.sql")),
                (2, "sign_in", include_str!("../migrations/postgres/0002_sign_in.sql")),
                (3, "grant_carrying_jti", include_str!("../migrations/postgres/0003_grant_carrying_jti.sql")),
                (
                    4,
                    "refresh_family_start",
                    include_str!("../migrations/postgres/0004_refresh_family_start.sql"),
                ),
                (6, "sources", include_str!("../migrations/postgres/0006_sources.sql")),
                (8, "readiness_probe", include_str!("../migrations/postgres/0008_readiness_probe.sql")),
                (9, "second_factors", include_str!("../migrations/postgres/0009_second_factors.sql")),
                (10, "poll_pace", include_str!("../migrations/postgres/0010_poll_pace.sql")),
                (11, "native_types", include_str!("../migrations/postgres/0011_native_types.sql")),
                (
                    12,
                    "decoupled_requests",
                    include_str!("../migrations/postgres/0012_decoupled_requests.sql"),
                ),
            ],
        }
    }

    /// The sqlx migrator of every migration.
    pub(crate) fn migrator(self) -> Migrator {
        self.migrator_until(i64::MAX)
    }

    /// The sqlx migrator of the migrations up to `last_version`: a database as an
    /// earlier release left it (for tests of what a later migration does).
    pub(crate) fn migrator_until(self, last_version: i64) -> Migrator {
        Migrator::with_migrations(
            self.migrations()
                .into_iter()
                .filter(|(version, _, _)| *version <= last_version)
                .map(|(version, description, sql)| {
                    Migration::new(
                        version,
                        description.into(),
                        MigrationType::Simple,
                        sqlx::SqlSafeStr::into_sql_str(sql),
                        false,
                    )
                })
                .collect(),
        )
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

/// A `LIKE … ESCAPE '\'` pattern matching keys that start with `prefix` literally:
/// `%`, `_` and the escape character itself lose their wildcard meaning.
pub(crate) fn like_prefix(prefix: &str) -> String {
    format!("{}%", prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}
