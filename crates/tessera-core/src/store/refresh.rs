//! Refresh tokens, rotated on every use.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Consumed, StoreResult};
use crate::Timestamp;
use crate::model::{ClientId, GrantId};
use crate::secret::SecretHash;

/// What a refresh token stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// The family: every token descended from one authorization.
    pub grant_id: GrantId,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// The user.
    pub subject: String,
    /// The scopes of the original grant: a refresh may narrow, never widen.
    pub scopes: Vec<String>,
    /// RFC 8707 resource indicators of the original request.
    pub resources: Vec<String>,
    /// When the user authenticated.
    pub auth_time: Timestamp,
    /// The session id for ID tokens issued on refresh.
    pub sid: String,
    /// When this token was issued.
    pub issued_at: Timestamp,
    /// Absolute end of the family, fixed at the first issue.
    pub expires_at: Timestamp,
    /// Sliding expiry of this token, when the client uses sliding lifetimes.
    pub idle_expires_at: Option<Timestamp>,
    /// RFC 9449 §5: a public client's refresh tokens stay bound to its DPoP key.
    pub dpop_jkt: Option<String>,
    /// RFC 8705 §4: a public client's refresh tokens stay bound to its TLS client
    /// certificate (the SHA-256 thumbprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
    /// How the user authenticated (RFC 8176), for ID tokens issued on refresh.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The `acr` of the grant's ID tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

/// What a store answers to a rotation the core never asks for: a successor of another
/// grant, or one that would outlive its family (a revoked grant is remembered only
/// until the expiry of the token that started the family).
pub const SUCCESSOR_OUTSIDE_FAMILY: &str =
    "a refresh token's successor must belong to the same grant and expire no later than it";

/// Refresh tokens, rotated on every use (RFC 9700 §4.14.2).
#[async_trait]
pub trait RefreshStore: Send + Sync {
    /// Stores the first refresh token of a grant.
    async fn put_refresh_token(&self, hash: &SecretHash, record: &RefreshRecord) -> StoreResult<()>;
    /// The record behind a live (unused, unrevoked) token, for validation before rotating.
    /// A used or revoked token is `Replayed`; an unknown one `Missing`.
    async fn refresh_token(&self, hash: &SecretHash) -> StoreResult<Consumed<RefreshRecord>>;
    /// Marks `old` used and stores `new` as its successor in one transaction. `Fresh`
    /// when this call used `old`; `Replayed` when it was already used or revoked (the
    /// caller revokes the family); `Missing` when unknown. At most one successor of
    /// a token ever exists.
    async fn rotate_refresh_token(
        &self,
        old: &SecretHash,
        new: &SecretHash,
        successor: &RefreshRecord,
        now: Timestamp,
    ) -> StoreResult<Consumed<()>>;
}
