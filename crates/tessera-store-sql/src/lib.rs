//! Tessera's store on SQL: an embedded SQLite file (the default) or a PostgreSQL
//! database shared by many instances, chosen by the URL scheme. Each backend
//! implements every `tessera-core` store trait in its own schema and SQL, one file per
//! concern named as core's `store/` (the contract tests hold them to one meaning):
//!
//! - SQLite through `rusqlite`: reads inline on the calling task on a few read
//!   connections (a statement on a local file takes microseconds, less than handing
//!   it to another thread and back), writes group-committed by one writer task;
//!   text JSON, integer seconds;
//! - PostgreSQL through sqlx connections in a pool of the store's own: `JSONB`,
//!   `TIMESTAMPTZ`, `BOOLEAN`.
//!
//! Single-use values are consumed in one statement (`INSERT … ON CONFLICT`,
//! `UPDATE`/`DELETE … RETURNING`) or one transaction that first takes the row it
//! changes, never read-then-write. Depends on `tessera-core` only; knows nothing of HTTP.

mod backend;
mod postgres;
mod sqlite;
pub mod testing;

use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::catalog::Resources;
use tessera_core::model::{Client, ClientId, GrantId, User};
use tessera_core::secret::SecretHash;
use tessera_core::store::Source;
use tessera_core::store::{
    ClientStore, CodeStore, ConsentStore, Consumed, GrantStore, KeyStore, MaintenanceStore, PendingGrant,
    RefreshRecord, RefreshStore, ReplayStore, RequestStore, ResourceStore, SecretStore, Session,
    SessionStore, StoreError, StoreResult, StoredKey, ThrottleStore, TokenRecord, TokenStore, UserStore,
};
use tessera_core::store::{FactorStore, PasskeyRecord, PollRules, PollStore, Polled, TotpFactor};

pub use backend::Backend;
use postgres::PgStore;
use sqlite::SqliteStore;

/// A store on SQLite or PostgreSQL, chosen by the URL scheme.
#[derive(Clone)]
pub struct SqlStore {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").field("backend", &self.backend()).finish_non_exhaustive()
    }
}

pub(crate) fn store_error(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    let error = error.into();
    if error.downcast_ref::<sqlx::Error>().is_some_and(unreachable) {
        return StoreError::unavailable(error);
    }
    StoreError::new(error)
}

/// Whether a statement that failed with `error` may still have been carried out: the
/// connection failed after it was sent, so the answer was lost, not the change. (An
/// error the server answered, or a connection never acquired, changed nothing.)
pub(crate) fn maybe_executed(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed)
        || matches!(error, sqlx::Error::Database(error)
            if error.code().is_some_and(|code| code.starts_with("08") || code.as_ref() == "57P01"))
}

/// Whether a sqlx error means the database cannot be reached now, rather than that
/// this statement is wrong: worth a retry by the client (`temporarily_unavailable`).
pub(crate) fn unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            true
        }
        // PostgreSQL SQLSTATE class 08 (connection exception) and 57P01..57P03
        // (admin or crash shutdown, cannot connect now: the server is stopping or starting).
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

/// How a store connects: the pool's bounds. SQLite ignores them (local file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a request waits for a pooled PostgreSQL connection (connecting
    /// included) before it fails as `temporarily_unavailable`. sqlx's own default
    /// is 30 s, which held every request for the whole of an outage.
    pub acquire_timeout: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { acquire_timeout: std::time::Duration::from_secs(2) }
    }
}

impl SqlStore {
    /// Connects to `url` (`sqlite://FILE` — created if missing — or `postgres://…`)
    /// and applies pending migrations. Safe when several instances start at once:
    /// SQLite migrations run in one `BEGIN IMMEDIATE` transaction, PostgreSQL ones
    /// under an advisory lock.
    ///
    /// # Errors
    /// When the URL is not SQLite or PostgreSQL, or connecting or migrating fails.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// [`Self::connect`] with the pool bounds of `options`.
    ///
    /// # Errors
    /// When the URL is not SQLite or PostgreSQL, or connecting or migrating fails.
    pub async fn connect_with(url: &str, options: StoreOptions) -> StoreResult<Self> {
        let inner = match Backend::from_url(url) {
            Some(Backend::Sqlite) => Inner::Sqlite(SqliteStore::open(url).await?),
            Some(Backend::Postgres) => Inner::Postgres(PgStore::connect(url, options).await?),
            None => {
                return Err(store_error(format!(
                    "storage.url must start with sqlite:// or postgres:// (got `{}`)",
                    redact(url)
                )));
            }
        };
        Ok(Self { inner })
    }

    /// Which database this store talks to.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Sqlite(_) => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes the store: PostgreSQL waits for the connections in use; the SQLite
    /// connection closes with the last clone of the store.
    pub async fn close(&self) {
        match &self.inner {
            Inner::Sqlite(_) => {}
            Inner::Postgres(store) => store.close().await,
        }
    }
}

/// The file a `sqlite://` URL names; `None` for any other URL. Lets a caller look
/// before [`SqlStore::connect`] would create the file.
#[must_use]
pub fn sqlite_file(url: &str) -> Option<String> {
    match Backend::from_url(url) {
        Some(Backend::Sqlite) => sqlite::sqlite_path(url).ok(),
        _ => None,
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://…@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Implements a store trait for [`SqlStore`] by handing each method to the backend.
macro_rules! forward {
    ($trait:ident { $(fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;)* }) => {
        #[async_trait]
        impl $trait for SqlStore {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match &self.inner {
                        Inner::Sqlite(store) => store.$name($($arg),*).await,
                        Inner::Postgres(store) => store.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

forward!(ClientStore {
    fn client(&self, client_id: &ClientId) -> StoreResult<Option<Client>>;
    fn put_clients(&self, clients: &[Client]) -> StoreResult<()>;
    fn put_clients_from(&self, source: Source, clients: &[Client]) -> StoreResult<()>;
    fn client_sources(&self) -> StoreResult<Vec<(ClientId, Source)>>;
    fn remove_client(&self, client_id: &ClientId, now: Timestamp) -> StoreResult<bool>;
});
forward!(ResourceStore {
    fn put_resources(&self, resources: &Resources) -> StoreResult<()>;
    fn resources(&self) -> StoreResult<Resources>;
});
forward!(UserStore {
    fn put_user(&self, user: &User) -> StoreResult<()>;
    fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    fn user_by_subject(&self, subject: &str) -> StoreResult<Option<User>>;
    fn users(&self) -> StoreResult<Vec<User>>;
    fn put_user_from(&self, user: &User, source: Source) -> StoreResult<()>;
    fn user_sources(&self) -> StoreResult<Vec<(String, Source)>>;
    fn remove_user(&self, username: &str, now: Timestamp) -> StoreResult<Option<User>>;
});
forward!(KeyStore {
    fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;
    fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<bool>;
});
forward!(ReplayStore {
    fn remember_once(&self, key: &str, expires: Timestamp, now: Timestamp) -> StoreResult<bool>;
});
forward!(TokenStore {
    fn put_reference_token(&self, hash: &SecretHash, record: &TokenRecord) -> StoreResult<()>;
    fn reference_token(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<TokenRecord>>;
    fn revoke_reference_token(&self, hash: &SecretHash) -> StoreResult<bool>;
    fn revoke_jti(&self, jti: &str, expires: Timestamp) -> StoreResult<()>;
    fn is_revoked(&self, jti: &str, grant_id: Option<&GrantId>) -> StoreResult<bool>;
});
forward!(MaintenanceStore {
    fn purge_expired(&self, now: Timestamp, batch: u32) -> StoreResult<u64>;
    fn ping(&self) -> StoreResult<()>;
});
forward!(CodeStore {
    fn put_code(&self, hash: &SecretHash, grant: &PendingGrant, expires_at: Timestamp) -> StoreResult<()>;
    fn consume_code(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Consumed<PendingGrant>>;
    fn redeem_code(
        &self,
        hash: &SecretHash,
        presented: &tessera_core::store::CodePresentation,
        now: Timestamp,
    ) -> StoreResult<Result<Consumed<PendingGrant>, tessera_core::store::CodeMismatch>>;
    fn redeemed_code(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<PendingGrant>>;
});
forward!(RefreshStore {
    fn put_refresh_token(&self, hash: &SecretHash, record: &RefreshRecord) -> StoreResult<()>;
    fn refresh_token(&self, hash: &SecretHash) -> StoreResult<Consumed<RefreshRecord>>;
    fn rotate_refresh_token(
        &self,
        old: &SecretHash,
        new: &SecretHash,
        successor: &RefreshRecord,
        now: Timestamp,
    ) -> StoreResult<Consumed<()>>;
});
forward!(GrantStore {
    fn revoke_grant(&self, grant_id: &GrantId, now: Timestamp, remember_until: Timestamp) -> StoreResult<()>;
});
forward!(SessionStore {
    fn put_session(&self, hash: &SecretHash, session: &Session) -> StoreResult<()>;
    fn session(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<Session>>;
    fn delete_session(&self, hash: &SecretHash) -> StoreResult<()>;
    fn sessions_of(&self, subject: &str, now: Timestamp) -> StoreResult<Vec<Session>>;
    fn end_session_of(&self, subject: &str, sid: &str) -> StoreResult<bool>;
});
forward!(RequestStore {
    fn put_request(&self, key: &str, document: &serde_json::Value, expires_at: Timestamp) -> StoreResult<()>;
    fn request(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>>;
    fn consume_request(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>>;
    fn requests_with_prefix(&self, prefix: &str, now: Timestamp) -> StoreResult<Vec<(String, serde_json::Value)>>;
});
forward!(ConsentStore {
    fn consented_scopes(&self, subject: &str, client_id: &str) -> StoreResult<Vec<String>>;
    fn put_consent(&self, subject: &str, client_id: &str, scopes: &[String]) -> StoreResult<()>;
});
forward!(ThrottleStore {
    fn record_failure(&self, key: &str, now: Timestamp, window: i64) -> StoreResult<u32>;
    fn failures(&self, key: &str, now: Timestamp) -> StoreResult<u32>;
    fn clear_failures(&self, key: &str) -> StoreResult<()>;
    fn reserve_attempt(&self, key: &str, limit: u32, now: Timestamp, window: i64) -> StoreResult<bool>;
    fn refund_attempt(&self, key: &str) -> StoreResult<()>;
});
forward!(FactorStore {
    fn put_totp(&self, subject: &str, factor: &TotpFactor) -> StoreResult<bool>;
    fn totp(&self, subject: &str) -> StoreResult<Option<TotpFactor>>;
    fn accept_totp_step(&self, subject: &str, step: i64, pending: bool) -> StoreResult<bool>;
    fn delete_totp(&self, subject: &str) -> StoreResult<bool>;
    fn put_recovery_codes(&self, subject: &str, codes: &[SecretHash]) -> StoreResult<()>;
    fn use_recovery_code(&self, subject: &str, code: &SecretHash) -> StoreResult<bool>;
    fn recovery_codes_left(&self, subject: &str) -> StoreResult<u32>;
    fn add_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<bool>;
    fn touch_passkey(&self, subject: &str, credential_id: &str, credential: &str, now: Timestamp) -> StoreResult<bool>;
    fn passkeys(&self, subject: &str) -> StoreResult<Vec<PasskeyRecord>>;
    fn passkey(&self, credential_id: &str) -> StoreResult<Option<PasskeyRecord>>;
    fn delete_passkey(&self, subject: &str, credential_id: &str) -> StoreResult<bool>;
    fn delete_factors(&self, subject: &str) -> StoreResult<bool>;
});
forward!(PollStore {
    fn put_polled(&self, key: &str, state: &str, document: &serde_json::Value, expires_at: Timestamp) -> StoreResult<()>;
    fn polled(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>>;
    fn decide_polled(&self, key: &str, state: &str, document: &serde_json::Value, now: Timestamp) -> StoreResult<bool>;
    fn poll(&self, key: &str, now: Timestamp, rules: &PollRules) -> StoreResult<Polled>;
});
forward!(SecretStore {
    fn shared_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>>;
});

#[cfg(test)]
mod tests {
    use super::{redact, store_error};

    #[test]
    fn an_unreachable_database_is_unavailable_and_a_bad_statement_is_not() {
        assert!(store_error(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(store_error(sqlx::Error::PoolClosed).is_unavailable());
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(store_error(sqlx::Error::Io(refused)).is_unavailable());
        assert!(!store_error(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!store_error("a document that does not parse").is_unavailable());
    }

    #[test]
    fn redact_hides_the_password() {
        assert_eq!(redact("postgres://u:pw@db/x"), "postgres://…@db/x");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
