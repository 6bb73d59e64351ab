//! Randomness for identifiers and secrets, from aws-lc-rs's CSPRNG.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The random source handed to everything that makes a token, code or key.
#[derive(Clone)]
pub struct Rng {
    inner: SystemRandom,
    /// Tests only: a seeded stream instead of the system generator for
    /// [`Self::bytes`], [`Self::token`] and [`Self::identifier`], so a failing test
    /// replays with the same values.
    #[cfg(any(test, feature = "test-util"))]
    seeded: Option<std::sync::Arc<std::sync::Mutex<SeededStream>>>,
}

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rng")
    }
}

impl Default for Rng {
    fn default() -> Self {
        Self {
            inner: SystemRandom::new(),
            #[cfg(any(test, feature = "test-util"))]
            seeded: None,
        }
    }
}

impl Rng {
    /// Tests only: a generator whose bytes, tokens and identifiers follow from `seed`
    /// (SHA-256 of the seed and a block counter), the same on every run. Key
    /// generation ([`Self::secure_random`]) stays on the system generator:
    /// aws-lc-rs takes no other.
    #[cfg(any(test, feature = "test-util"))]
    #[must_use]
    pub fn seeded(seed: u64) -> Self {
        let stream = SeededStream { seed, block: 0, buffered: Vec::new() };
        Self { seeded: Some(std::sync::Arc::new(std::sync::Mutex::new(stream))), ..Self::default() }
    }

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
        #[cfg(any(test, feature = "test-util"))]
        if let Some(stream) = &self.seeded {
            stream.lock().unwrap_or_else(std::sync::PoisonError::into_inner).fill(&mut out);
            return out;
        }
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

/// A deterministic byte stream for tests: SHA-256 over (seed, block number).
#[cfg(any(test, feature = "test-util"))]
struct SeededStream {
    seed: u64,
    block: u64,
    buffered: Vec<u8>,
}

#[cfg(any(test, feature = "test-util"))]
impl SeededStream {
    fn fill(&mut self, out: &mut [u8]) {
        for byte in out {
            if self.buffered.is_empty() {
                let mut input = self.seed.to_le_bytes().to_vec();
                input.extend_from_slice(&self.block.to_le_bytes());
                self.buffered =
                    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input).as_ref().to_vec();
                self.buffered.reverse();
                self.block += 1;
            }
            *byte = self.buffered.pop().unwrap_or_default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn a_seeded_generator_repeats_itself_and_the_system_one_does_not() {
        let (a, b) = (Rng::seeded(7), Rng::seeded(7));
        let first: Vec<String> = (0..3).map(|_| a.token()).collect();
        assert_eq!(first, (0..3).map(|_| b.token()).collect::<Vec<_>>(), "same seed, same tokens");
        assert_ne!(first[0], first[1], "a stream, not one value");
        assert_ne!(Rng::seeded(8).token(), first[0], "another seed, other tokens");
        let clone = a.clone();
        assert_ne!(clone.identifier(), a.identifier(), "clones share the stream");
        assert_ne!(Rng::default().token(), Rng::default().token());
    }
}
