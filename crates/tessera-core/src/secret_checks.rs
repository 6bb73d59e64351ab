//! Checking presented shared secrets (client secrets, API secrets at `/introspect`)
//! against their stored forms, keeping the token endpoint fast.
//!
//! A `value` secret is stored only as an argon2id PHC string (about 20 ms a check).
//! After one successful slow check, the process remembers the SHA-256 of the secret
//! that passed, keyed by owner and PHC string, so the next request costs one SHA-256
//! and a constant-time comparison. Only a secret that verified is remembered; a miss
//! takes the slow path through the same bounded queue as password checks, so
//! anonymous junk secrets cannot multiply argon2 memory or CPU.

use std::collections::HashMap;
use std::sync::Mutex;

use subtle::ConstantTimeEq as _;

use crate::OAuthError;
use crate::provider::Provider;
use crate::secret::{Secret, StoredSecret, sha256};

/// How many (owner, PHC string) pairs are remembered: each is 64 bytes plus the map's
/// overhead, so the cache stays well under a MiB whatever callers send.
pub const CACHE_ENTRIES: usize = 4096;

/// Per-process memory of secrets that passed a slow check. Never written to the store.
#[derive(Default)]
pub struct SecretChecks {
    /// `SHA-256(owner NUL phc)` -> SHA-256 of the secret that verified against `phc`.
    verified: Mutex<HashMap<[u8; 32], [u8; 32]>>,
}

impl SecretChecks {
    fn key(owner: &str, phc: &str) -> [u8; 32] {
        sha256([owner.as_bytes(), b"\0".as_slice(), phc.as_bytes()].concat())
    }

    /// Whether `presented` (a SHA-256) is the secret that last verified against `phc`,
    /// compared in constant time.
    fn remembered(&self, owner: &str, phc: &str, presented: &[u8; 32]) -> bool {
        let verified = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        verified.get(&Self::key(owner, phc)).is_some_and(|known| bool::from(known.ct_eq(presented)))
    }

    fn remember(&self, owner: &str, phc: &str, presented: [u8; 32]) {
        let mut verified = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.len() >= CACHE_ENTRIES && !verified.contains_key(&Self::key(owner, phc)) {
            // Bounded: drop an arbitrary entry; it costs its owner one slow check.
            if let Some(evicted) = verified.keys().next().copied() {
                verified.remove(&evicted);
            }
        }
        verified.insert(Self::key(owner, phc), presented);
    }

    /// How many pairs are remembered (for tests and diagnostics).
    #[must_use]
    pub fn len(&self) -> usize {
        self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Whether nothing is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether `presented` matches one of `stored`, the current secrets of `owner` (a client
/// id, or `api:` and an API name). Every stored secret is compared, with no early exit
/// among the fast ones.
///
/// # Errors
/// `temporarily_unavailable` (503 with `Retry-After`) when a slow check is needed and
/// the bounded queue of password checks is full.
pub async fn verify(
    provider: &Provider,
    owner: &str,
    stored: &[&StoredSecret],
    presented: &Secret,
) -> Result<bool, OAuthError> {
    let digest = sha256(presented.expose());
    let mut matched = false;
    let mut slow = Vec::new();
    for secret in stored {
        match secret {
            StoredSecret::Sha256(hash) => matched |= hash.matches(presented.expose()),
            StoredSecret::Argon2id(phc) => {
                if provider.secret_checks.remembered(owner, phc, &digest) {
                    matched = true;
                } else {
                    slow.push(phc);
                }
            }
        }
    }
    if matched {
        return Ok(true);
    }
    for phc in slow {
        match provider.password_checks.verify(presented.expose(), phc.clone()).await {
            Some(true) => {
                provider.secret_checks.remember(owner, phc, digest);
                return Ok(true);
            }
            Some(false) => {}
            None => {
                return Err(OAuthError::temporarily_unavailable("too many secret checks in progress"));
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_remembered_secret_for_that_owner_and_hash_is_recalled() {
        let checks = SecretChecks::default();
        let right = sha256("right");
        checks.remember("client-a", "$argon2id$phc-1", right);
        assert!(checks.remembered("client-a", "$argon2id$phc-1", &right));
        assert!(!checks.remembered("client-a", "$argon2id$phc-1", &sha256("wrong")));
        assert!(!checks.remembered("client-b", "$argon2id$phc-1", &right));
        assert!(!checks.remembered("client-a", "$argon2id$phc-2", &right));
    }

    #[test]
    fn the_cache_never_grows_past_its_bound() {
        let checks = SecretChecks::default();
        for index in 0..CACHE_ENTRIES + 100 {
            checks.remember(&format!("client-{index}"), "$argon2id$phc", sha256("s"));
        }
        assert_eq!(checks.len(), CACHE_ENTRIES);
        assert!(checks.remembered(&format!("client-{}", CACHE_ENTRIES + 99), "$argon2id$phc", &sha256("s")));
    }
}
