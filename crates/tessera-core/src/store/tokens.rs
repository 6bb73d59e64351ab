//! Reference tokens, revoked JWT ids and single-use marks.

use async_trait::async_trait;

use super::StoreResult;
use crate::Timestamp;
use crate::model::{ClientId, GrantId};
use crate::secret::SecretHash;

/// What a reference (opaque) access token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub jti: String,
    pub client_id: ClientId,
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
    async fn is_revoked(&self, jti: &str, grant_id: Option<&GrantId>) -> StoreResult<bool>;
}

/// Remembers single-use values (assertion and DPoP `jti`s) until they expire.
#[async_trait]
pub trait ReplayStore: Send + Sync {
    /// Records `key` until `expires`. `true` the first time; `false` while a live
    /// record exists. Atomic: of any number of racing calls, one sees `true`.
    async fn remember_once(&self, key: &str, expires: Timestamp, now: Timestamp) -> StoreResult<bool>;
}
