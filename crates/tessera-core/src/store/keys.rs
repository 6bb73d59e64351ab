//! Signing keys and the secrets the instances share.

use async_trait::async_trait;

use super::StoreResult;
use crate::Timestamp;

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

/// Secrets the instances share (the cookie and CSRF key).
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The secret called `name`; stores `candidate` first if there is none, so every
    /// instance ends up with the same value.
    async fn shared_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>>;
}
