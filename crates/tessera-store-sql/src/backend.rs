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
const EXPIRING_TABLES: [(&str, &str, &str); 11] = [
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
    pub(crate) fn max_connections(self) -> u32 {
        match self {
            Self::Sqlite => 1,
            Self::Postgres => 10,
        }
    }

    /// The migrations: version, description, SQL.
    pub(crate) fn migrations(self) -> [(i64, &'static str, &'static str); 8] {
        let (
            initial,
            sign_in,
            grant_carrying_jti,
            refresh_family_start,
            sources,
            readiness_probe,
            factors,
            pace,
        ) = match self {
            Self::Sqlite => (
                include_str!("../migrations/sqlite/0001_initial.sql"),
                include_str!("../migrations/sqlite/0002_sign_in.sql"),
                include_str!("../migrations/sqlite/0003_grant_carrying_jti.sql"),
                include_str!("../migrations/sqlite/0004_refresh_family_start.sql"),
                include_str!("../migrations/sqlite/0006_sources.sql"),
                include_str!("../migrations/sqlite/0008_readiness_probe.sql"),
                include_str!("../migrations/sqlite/0009_second_factors.sql"),
                include_str!("../migrations/sqlite/0010_poll_pace.sql"),
            ),
            Self::Postgres => (
                include_str!("../migrations/postgres/0001_initial.sql"),
                include_str!("../migrations/postgres/0002_sign_in.sql"),
                include_str!("../migrations/postgres/0003_grant_carrying_jti.sql"),
                include_str!("../migrations/postgres/0004_refresh_family_start.sql"),
                include_str!("../migrations/postgres/0006_sources.sql"),
                include_str!("../migrations/postgres/0008_readiness_probe.sql"),
                include_str!("../migrations/postgres/0009_second_factors.sql"),
                include_str!("../migrations/postgres/0010_poll_pace.sql"),
            ),
        };
        [
            (1, "initial", initial),
            (2, "sign_in", sign_in),
            (3, "grant_carrying_jti", grant_carrying_jti),
            (4, "refresh_family_start", refresh_family_start),
            (6, "sources", sources),
            (8, "readiness_probe", readiness_probe),
            (9, "second_factors", factors),
            (10, "poll_pace", pace),
        ]
    }

    pub(crate) fn migrator(self) -> Migrator {
        Migrator::with_migrations(
            self.migrations()
                .into_iter()
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

/// One poll's pace (`PollStore::pace_poll`): the conflict's `SET` reads the old row, so
/// `slowed` says whether this poll came sooner than the interval, and only one of
/// racing polls finds the interval passed. PostgreSQL's placeholders; SQLite's are the
/// same with `?` ([`sqlite_placeholders`]).
pub(crate) const PACE_POLL: &str = "INSERT INTO poll_pace (key, last_poll, poll_interval, slowed, expires_at) \
     VALUES ($1, $2, $3, 0, $5) ON CONFLICT (key) DO UPDATE SET \
     slowed = CASE WHEN $2 - poll_pace.last_poll < poll_pace.poll_interval THEN 1 ELSE 0 END, \
     poll_interval = CASE WHEN $2 - poll_pace.last_poll < poll_pace.poll_interval \
     THEN poll_pace.poll_interval + $4 ELSE poll_pace.poll_interval END, \
     last_poll = $2, expires_at = $5 \
     RETURNING slowed, poll_interval";

/// A statement written with PostgreSQL's `$N` placeholders, for SQLite (`?N`).
pub(crate) fn sqlite_placeholders(statement: &str) -> String {
    (1..=9).rev().fold(statement.to_owned(), |text, n| text.replace(&format!("${n}"), &format!("?{n}")))
}
