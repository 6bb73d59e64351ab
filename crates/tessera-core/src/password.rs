//! User passwords: argon2id PHC strings (about 17 ms a check here: never on a hot path).

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

use crate::random::Rng;

/// Hashes a password with argon2id and a fresh 16-byte salt.
///
/// # Errors
/// When argon2 refuses the input (a password longer than it accepts).
pub fn hash_password(password: &str, rng: &Rng) -> Result<String, String> {
    let salt = rng.bytes::<16>();
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| format!("cannot hash password: {error}"))
}

/// Checks a password against a stored PHC string; a malformed string never matches.
#[must_use]
pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), phc).is_ok()
}

/// Whether `phc` is an argon2id PHC string Tessera can verify.
#[must_use]
pub fn is_argon2id_hash(phc: &str) -> bool {
    phc.starts_with("$argon2id$") && argon2::password_hash::phc::PasswordHash::new(phc).is_ok()
}

/// Bounds the password checks in flight: an argon2id check holds ~19 MiB, so an
/// unbounded burst of sign-ins is a memory amplifier. `running` checks at a time (one
/// per core), `queued` more may wait; past that a sign-in is refused as `Busy`.
#[derive(Debug)]
pub struct PasswordChecks {
    admitted: tokio::sync::Semaphore,
    running: tokio::sync::Semaphore,
}

impl PasswordChecks {
    /// `running` concurrent checks and a queue of `queued`.
    #[must_use]
    pub fn new(running: usize, queued: usize) -> Self {
        Self {
            admitted: tokio::sync::Semaphore::new(running.max(1) + queued),
            running: tokio::sync::Semaphore::new(running.max(1)),
        }
    }

    /// Whether `password` matches `hash`; `None` when the queue is full.
    pub(crate) async fn verify(&self, password: &str, hash: String) -> Option<bool> {
        let _admitted = self.admitted.try_acquire().ok()?;
        let _running = self.running.acquire().await.ok()?;
        let password = password.to_owned();
        Some(tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await.unwrap_or(false))
    }
}

impl Default for PasswordChecks {
    /// One check per core, and a queue of four per core.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self::new(cores, 4 * cores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_others_do_not() {
        let hash = hash_password("correct horse", &Rng::default()).unwrap();
        assert!(is_argon2id_hash(&hash));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horse ", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }
}
