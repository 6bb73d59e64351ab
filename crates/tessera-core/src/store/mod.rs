//! What the core needs from storage, split by concern. Each backend implements every
//! trait and passes [`contract`]; single-use artefacts are consumed atomically.

#[cfg(any(test, feature = "test-util"))]
pub mod contract;
mod factors;
mod flows;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;
mod polls;
mod session;

pub use factors::{FactorStore, PasskeyRecord, TotpFactor};
pub use flows::{Flow, FlowStore, Versioned};
pub use polls::{Paced, PollStore};

pub use session::{CodeMismatch, CodePresentation};
pub use session::{
    CodeStore, ConsentStore, Consumed, GrantStore, PendingGrant, RefreshRecord, RefreshStore, RequestStore,
    SUCCESSOR_OUTSIDE_FAMILY, SecretStore, Session, SessionStore, ThrottleStore,
};

use async_trait::async_trait;

use crate::Timestamp;
use crate::catalog::Resources;
use crate::model::{Client, ClientId, User};
use crate::secret::SecretHash;

/// A storage failure: becomes `server_error`, its cause logged.
#[derive(Debug, thiserror::Error)]
#[error("store error: {0}")]
pub struct StoreError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl StoreError {
    /// Wraps any backend error.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(error.into())
    }

    /// The store cannot be reached now (connection refused or lost, no pooled
    /// connection within the acquire timeout, pool closed): worth a retry, so it
    /// becomes `temporarily_unavailable` (503 with `Retry-After`) rather than
    /// `server_error`.
    pub fn unavailable(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(Box::new(Unavailable(error.into())))
    }

    /// Whether this failure is the store being unreachable (see [`Self::unavailable`]).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        self.0.downcast_ref::<Unavailable>().is_some()
    }

    /// The store could not be reached to learn whether a single-use consumption whose
    /// `COMMIT` went unanswered was made durable: `unavailable`, and the caller may
    /// let one retry of the same consumption through (see [`Self::is_in_doubt`]).
    pub fn in_doubt(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::unavailable(InDoubt(error.into()))
    }

    /// Whether this failure left a consumption's commit in doubt ([`Self::in_doubt`]).
    #[must_use]
    pub fn is_in_doubt(&self) -> bool {
        self.0.downcast_ref::<Unavailable>().is_some_and(|outer| outer.0.downcast_ref::<InDoubt>().is_some())
    }
}

/// Marks an [`Unavailable`] cause as a commit whose outcome is unknown.
#[derive(Debug, thiserror::Error)]
#[error("commit in doubt: {0}")]
pub struct InDoubt(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Marks a [`StoreError`]'s cause as the store being unreachable. A wrapper inside the
/// box rather than a field, so `StoreError` keeps its shape.
#[derive(Debug, thiserror::Error)]
#[error("store unavailable: {0}")]
pub struct Unavailable(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// The result of every store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Reads a stored flow document (`what` names it for the log). One that does not
/// decode (written by another version, or damaged) is a `server_error` with its cause
/// logged, never taken for a missing or expired one: the user is not told "expired"
/// about a request that exists.
///
/// # Errors
/// `server_error` when the document does not decode as `T`.
pub fn decode_document<T: serde::de::DeserializeOwned>(
    what: &str,
    document: serde_json::Value,
) -> Result<T, crate::OAuthError> {
    serde_json::from_value(document).map_err(|error| {
        tracing::error!(what, %error, "a stored document does not decode");
        crate::OAuthError::server_error(format!("the stored {what} cannot be read"))
    })
}

/// [`decode_document`] for an optional document.
///
/// # Errors
/// As [`decode_document`].
pub fn decode_optional<T: serde::de::DeserializeOwned>(
    what: &str,
    document: Option<serde_json::Value>,
) -> Result<Option<T>, crate::OAuthError> {
    document.map(|document| decode_document(what, document)).transpose()
}

/// Registered clients.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// The client with this id.
    async fn client(&self, client_id: &ClientId) -> StoreResult<Option<Client>>;
    /// Inserts or replaces clients by `client_id`.
    async fn put_clients(&self, clients: &[Client]) -> StoreResult<()>;
    /// Inserts or replaces clients by `client_id`, recording `source` as where each now
    /// comes from (a client [`put_clients`](Self::put_clients) inserts is `Config`).
    async fn put_clients_from(&self, source: Source, clients: &[Client]) -> StoreResult<()>;
    /// Every client's id and source, ordered by id.
    async fn client_sources(&self) -> StoreResult<Vec<(ClientId, Source)>>;
    /// Deletes the client and, in the same step, makes everything issued to it unusable:
    /// the grants of its stored refresh tokens and codes are revoked (as by
    /// `GrantStore::revoke_grant`) and its consents forgotten. `false` when unknown.
    async fn remove_client(&self, client_id: &ClientId, now: Timestamp) -> StoreResult<bool>;
}

/// API scopes, API resources and identity resources.
#[async_trait]
pub trait ResourceStore: Send + Sync {
    /// Replaces the whole set.
    async fn put_resources(&self, resources: &Resources) -> StoreResult<()>;
    /// The stored set (empty when none was stored).
    async fn resources(&self) -> StoreResult<Resources>;
}

/// Local user accounts.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a user, or replaces the one with the same username.
    async fn put_user(&self, user: &User) -> StoreResult<()>;
    /// The user with this username.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// The user with this subject (`sub`).
    async fn user_by_subject(&self, subject: &str) -> StoreResult<Option<User>>;
    /// Every user, ordered by username.
    async fn users(&self) -> StoreResult<Vec<User>>;
    /// Inserts or replaces the user with this username, recording `source` as where it
    /// now comes from ([`put_user`](Self::put_user) inserts `Cli` and keeps the source
    /// of a user it replaces).
    async fn put_user_from(&self, user: &User, source: Source) -> StoreResult<()>;
    /// Every user's username and source, ordered by username.
    async fn user_sources(&self) -> StoreResult<Vec<(String, Source)>>;
    /// Deletes the user and, in the same step, makes everything issued to it unusable:
    /// the grants of its stored refresh tokens and codes are revoked, its sessions,
    /// consents and second factors deleted. Returns the removed user; `None` when unknown.
    async fn remove_user(&self, username: &str, now: Timestamp) -> StoreResult<Option<User>>;
}

/// Where a stored client or user comes from. A start reconciles only what the
/// configuration file declared (`Config`): what it no longer declares is removed;
/// the other sources are never touched by the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Declared in the configuration file (`[[clients]]`, `[[users]]`).
    Config,
    /// Created with the command line (`tessera users add`).
    Cli,
    /// Created through an administration API.
    Admin,
    /// Registered by the client itself (RFC 7591).
    Dynamic,
}

impl Source {
    /// The value stored in the `source` column.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Cli => "cli",
            Self::Admin => "admin",
            Self::Dynamic => "dynamic",
        }
    }

    /// Reads a stored `source` column.
    ///
    /// # Errors
    /// For a value no version of Tessera writes.
    pub fn parse(value: &str) -> StoreResult<Self> {
        match value {
            "config" => Ok(Self::Config),
            "cli" => Ok(Self::Cli),
            "admin" => Ok(Self::Admin),
            "dynamic" => Ok(Self::Dynamic),
            other => Err(StoreError::new(format!("unknown source `{other}`"))),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signing key as stored: private part sealed (or plain), with its schedule.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Orders keys; unique, so two instances cannot both create "the next key".
    pub generation: i64,
    pub kid: String,
    pub algorithm: String,
    pub private_key: Vec<u8>,
    pub sealed: bool,
    pub created_at: Timestamp,
    /// Signs from here...
    pub activates_at: Timestamp,
    /// ...until here...
    pub retires_at: Timestamp,
    /// ...and is published until here.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("generation", &self.generation)
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("activates_at", &self.activates_at)
            .field("retires_at", &self.retires_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Signing keys.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every key not yet purged, by generation.
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;
    /// Adds a key unless its generation exists; `false` when another instance won.
    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<bool>;
}

/// Remembers single-use values (assertion and DPoP `jti`s) until they expire.
#[async_trait]
pub trait ReplayStore: Send + Sync {
    /// Records `key` until `expires`. `true` the first time; `false` while a live
    /// record exists. Atomic: of any number of racing calls, one sees `true`.
    async fn remember_once(&self, key: &str, expires: Timestamp, now: Timestamp) -> StoreResult<bool>;
}

/// What a reference (opaque) access token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub jti: String,
    pub client_id: String,
    pub subject: String,
    pub scope: Vec<String>,
    pub audience: Vec<String>,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Reference tokens and revoked JWT ids.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a reference token by the hash of its value.
    async fn put_reference_token(&self, hash: &SecretHash, record: &TokenRecord) -> StoreResult<()>;
    /// The live (unexpired, unrevoked) reference token with this hash.
    async fn reference_token(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<TokenRecord>>;
    /// Deletes a reference token; `true` if it existed.
    async fn revoke_reference_token(&self, hash: &SecretHash) -> StoreResult<bool>;
    /// Marks a JWT's `jti` revoked until the token would have expired anyway.
    async fn revoke_jti(&self, jti: &str, expires: Timestamp) -> StoreResult<()>;
    /// Whether the token `jti` was revoked by itself, or its grant `grant_id` was
    /// (`GrantStore::revoke_grant`). One read, judged when the token is presented, so
    /// a token minted while its grant is being revoked cannot slip through.
    async fn is_revoked(&self, jti: &str, grant_id: Option<&str>) -> StoreResult<bool>;
}

/// Housekeeping.
#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    /// Deletes at most `batch` expired rows of each kind; returns how many went.
    /// Safe to run on many instances at once: no full-table locks, no deadlocks.
    async fn purge_expired(&self, now: Timestamp, batch: u32) -> StoreResult<u64>;
    /// Whether the store answers (readiness).
    async fn ping(&self) -> StoreResult<()>;
}

/// The slices of the store a grant may touch at the token endpoint: codes, refresh
/// tokens, grants and their revocation marks, single-use marks, and the documents and
/// polls of the decoupled flows. No users, sessions, clients, keys or factors.
pub trait GrantStores:
    CodeStore + RefreshStore + GrantStore + TokenStore + ReplayStore + RequestStore + PollStore
{
}

impl<T> GrantStores for T where
    T: CodeStore + RefreshStore + GrantStore + TokenStore + ReplayStore + RequestStore + PollStore + ?Sized
{
}

/// Every store trait together; implemented for anything that implements them all.
/// [`GrantStores`] is a supertrait, so the whole store hands a grant its slices
/// (`Arc<dyn Store>` coerces to `Arc<dyn GrantStores>`).
pub trait Store:
    GrantStores
    + ClientStore
    + ResourceStore
    + UserStore
    + KeyStore
    + MaintenanceStore
    + SessionStore
    + ConsentStore
    + ThrottleStore
    + SecretStore
    + FactorStore
{
}

impl<T> Store for T where
    T: GrantStores
        + ClientStore
        + ResourceStore
        + UserStore
        + KeyStore
        + MaintenanceStore
        + SessionStore
        + ConsentStore
        + ThrottleStore
        + SecretStore
        + FactorStore
{
}
