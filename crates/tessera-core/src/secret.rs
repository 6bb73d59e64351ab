//! Secrets that must never reach a log, and their stored SHA-256 form.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

/// A secret value (client secret, token, password). `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: only for hashing, verifying or sending it to its owner.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The SHA-256 of a high-entropy secret (client secret, opaque token), as stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Hashes a secret value.
    #[must_use]
    pub fn of(secret: &str) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    /// Parses a standard or url-safe base64 SHA-256 digest (the `sha256` config form).
    ///
    /// # Errors
    /// When the text is not base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| "not base64".to_owned())?;
        let array: [u8; 32] = bytes.try_into().map_err(|_| "not a SHA-256 digest (32 bytes)".to_owned())?;
        Ok(Self(array))
    }

    /// Whether `secret` hashes to this value, compared in constant time.
    #[must_use]
    pub fn matches(&self, secret: &str) -> bool {
        bool::from(Self::of(secret).0.ct_eq(&self.0))
    }

    /// The base64url form, used as a store key.
    #[must_use]
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHash([redacted])")
    }
}

impl TryFrom<String> for SecretHash {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::from_base64(&value)
    }
}

impl From<SecretHash> for String {
    fn from(value: SecretHash) -> Self {
        value.to_base64url()
    }
}

/// Base64url without padding, as JOSE uses it.
#[must_use]
pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two public-length values (thumbprints, nonces) without leaking where they
/// first differ.
#[must_use]
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// SHA-256 of arbitrary bytes.
#[must_use]
pub fn sha256(bytes: impl AsRef<[u8]>) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes.as_ref());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_never_shows_the_value() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "[redacted]");
        assert!(!format!("{:?}", SecretHash::of("hunter2")).contains("hunter2"));
    }

    #[test]
    fn hash_matches_only_its_secret() {
        let hash = SecretHash::of("s3cret");
        assert!(hash.matches("s3cret"));
        assert!(!hash.matches("s3cret "));
        assert!(!hash.matches(""));
    }

    #[test]
    fn hash_round_trips_through_base64() {
        let hash = SecretHash::of("x");
        assert_eq!(SecretHash::from_base64(&hash.to_base64url()), Ok(hash));
        assert!(SecretHash::from_base64("AAAA").is_err());
    }
}
