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
use std::sync::{Arc, Mutex};

use subtle::ConstantTimeEq as _;

use crate::OAuthError;
use crate::password::PasswordChecks;
use crate::secret::{Secret, StoredSecret, sha256};

/// How many (owner, PHC string) pairs are remembered: each is 64 bytes plus the map's
/// overhead, so the cache stays well under a MiB whatever callers send.
pub const CACHE_ENTRIES: usize = 4096;

/// Per-process memory of secrets that passed a slow check. Never written to the store.
#[derive(Default)]
pub struct SecretChecks {
    /// `SHA-256(owner NUL phc)` -> SHA-256 of the secret that verified against `phc`.
    verified: Mutex<HashMap<[u8; 32], [u8; 32]>>,
    /// Slow checks in progress, by owner, PHC string and presented secret: a burst of
    /// requests with one secret (a service's first calls after a start) waits on one
    /// argon2 check instead of filling the queue. Entries leave when their check ends.
    in_flight: Mutex<HashMap<[u8; 32], Arc<SlowCheck>>>,
}

/// The outcome of one slow check, shared by every request that waits on it: whether
/// the secret verified, or `None` when the queue of password checks was full.
type SlowCheck = tokio::sync::OnceCell<Option<bool>>;

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

    fn flight_key(owner: &str, phc: &str, presented: &[u8; 32]) -> [u8; 32] {
        sha256([Self::key(owner, phc).as_slice(), presented.as_slice()].concat())
    }

    /// The slow check of `presented` against `phc` for `owner`: joins one in progress.
    async fn slow_check(
        &self,
        password_checks: &PasswordChecks,
        owner: &str,
        phc: &str,
        presented: &Secret,
    ) -> Option<bool> {
        let digest = sha256(presented.expose());
        let key = Self::flight_key(owner, phc, &digest);
        let check = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            in_flight.entry(key).or_default().clone()
        };
        let outcome = *check
            .get_or_init(|| async {
                // A check that ended just before this one joined may have remembered it.
                if self.remembered(owner, phc, &digest) {
                    return Some(true);
                }
                let outcome = password_checks.verify(presented.expose(), phc.to_owned()).await;
                if outcome == Some(true) {
                    self.remember(owner, phc, digest);
                }
                outcome
            })
            .await;
        let mut in_flight = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if in_flight.get(&key).is_some_and(|current| Arc::ptr_eq(current, &check)) {
            in_flight.remove(&key);
        }
        outcome
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
    checks: &SecretChecks,
    password_checks: &PasswordChecks,
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
                if checks.remembered(owner, phc, &digest) {
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
        match checks.slow_check(password_checks, owner, phc, presented).await {
            Some(true) => return Ok(true),
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
