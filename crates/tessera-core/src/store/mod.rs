//! What the core needs from storage, split by concern. Each backend implements every
//! trait and passes [`contract`]; single-use artefacts are consumed atomically.

mod ciba;
mod clients;
mod codes;
mod consent;
#[cfg(any(test, feature = "test-util"))]
pub mod contract;
mod decoupled;
mod device;
mod factors;
mod flows;
mod grants;
mod interactions;
mod keys;
mod maintenance;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;
mod par;
mod polls;
mod refresh;
mod requests;
mod sessions;
mod throttle;
mod tokens;
mod users;

pub use ciba::{CibaRequests, CibaStore, UsersRequests};
pub use clients::{ClientStore, ResourceStore};
pub use codes::{CodeMismatch, CodePresentation, CodeStore, PendingGrant};
pub use consent::ConsentStore;
#[cfg(test)]
pub(crate) use decoupled::start as start_decoupled;
pub use decoupled::{DecoupledFlow, DecoupledPoll, DecoupledRequests};
pub use device::{DeviceRequests, DeviceStore, USER_CODE_CLAIMS, UserCodes};
pub use factors::{FactorStore, PasskeyRecord, TotpFactor};
pub use flows::{Flow, FlowStore};
pub use grants::GrantStore;
pub use interactions::{InteractionStore, Interactions};
pub use keys::{KeyStore, SecretStore, StoredKey};
pub use maintenance::MaintenanceStore;
pub use par::{PushedRequestStore, PushedRequests};
pub use polls::{PENDING, PollRules, PollStore, Polled, contains, is_decided, unpaced_answer};
pub use refresh::{RefreshRecord, RefreshStore, SUCCESSOR_OUTSIDE_FAMILY};
pub use requests::RequestStore;
pub use sessions::{Session, SessionStore};
pub use throttle::ThrottleStore;
pub use tokens::{ReplayStore, TokenRecord, TokenStore};
pub use users::UserStore;

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

/// The result of redeeming a single-use artefact (code, refresh token, PAR request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed<T> {
    /// First use: here is what it stood for.
    Fresh(T),
    /// Already used: the grant it belongs to must be revoked (RFC 6749 §4.1.2,
    /// RFC 9700 §4.14.2).
    Replayed { grant_id: crate::model::GrantId },
    /// Unknown, expired or revoked.
    Missing,
}

// Shared by `ClientStore` and `UserStore`, so it lives here rather than with either.
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
