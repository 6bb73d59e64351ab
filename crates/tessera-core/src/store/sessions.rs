//! Signed-in browser sessions, kept server-side.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreResult;
use crate::Timestamp;
use crate::secret::SecretHash;

/// A signed-in browser session, kept server-side so any instance can continue it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The signed-in user's `sub`.
    pub subject: String,
    /// The username, for pages.
    pub username: String,
    /// When the user authenticated (`auth_time`).
    pub auth_time: Timestamp,
    /// Public session id (`sid`, OpenID Connect Front-Channel Logout §3).
    pub sid: String,
    /// When the session ends.
    pub expires_at: Timestamp,
    /// How the user authenticated (RFC 8176 `amr` values, e.g. `pwd`, `otp`, `hwk`).
    /// Sessions stored before second factors existed were password sign-ins.
    #[serde(default = "password_only")]
    pub amr: Vec<String>,
    /// When the user last proved who they are in this session (sign-in, step-up or
    /// re-authentication); account changes ask again when this is too old.
    #[serde(default)]
    pub verified_at: Option<Timestamp>,
}

fn password_only() -> Vec<String> {
    vec!["pwd".to_owned()]
}

/// Browser sessions, by the hash of the cookie value.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores (or replaces) a session by the hash of its cookie value.
    async fn put_session(&self, hash: &SecretHash, session: &Session) -> StoreResult<()>;
    /// The unexpired session.
    async fn session(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<Session>>;
    /// Ends a session (sign-out).
    async fn delete_session(&self, hash: &SecretHash) -> StoreResult<()>;
    /// The user's unexpired sessions, oldest sign-in first.
    async fn sessions_of(&self, subject: &str, now: Timestamp) -> StoreResult<Vec<Session>>;
    /// Ends the user's session with this `sid`; `false` when there is none.
    async fn end_session_of(&self, subject: &str, sid: &str) -> StoreResult<bool>;
}
