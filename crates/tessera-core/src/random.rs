//! Randomness for identifiers and secrets, from aws-lc-rs's CSPRNG.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The random source handed to everything that makes a token, code or key.
#[derive(Clone)]
pub struct Rng {
    inner: SystemRandom,
}

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rng")
    }
}

impl Default for Rng {
    fn default() -> Self {
        Self { inner: SystemRandom::new() }
    }
}

impl Rng {
    /// The underlying generator, for aws-lc-rs APIs that take one.
    #[must_use]
    pub fn secure_random(&self) -> &dyn SecureRandom {
        &self.inner
    }

    /// `N` random bytes.
    ///
    /// # Panics
    /// Never in practice: the system generator fails only if the OS has no entropy source.
    #[must_use]
    pub fn bytes<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        #[expect(clippy::expect_used, reason = "no entropy means no safe way to go on")]
        self.inner.fill(&mut out).expect("system random generator failed");
        out
    }

    /// A base64url string of 32 random bytes (256 bits): opaque tokens and codes.
    #[must_use]
    pub fn token(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.bytes::<32>())
    }

    /// A base64url string of 16 random bytes: `jti` values and key ids.
    #[must_use]
    pub fn identifier(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.bytes::<16>())
    }
}
