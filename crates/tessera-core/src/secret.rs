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

/// A shared secret as stored: the argon2id PHC string of a secret Tessera was given
/// (`value`), or the SHA-256 an operator chose to give instead (`sha256`). Serialized as
/// one string, so resources stored before argon2id read back as [`StoredSecret::Sha256`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum StoredSecret {
    /// A salted, slow hash (`$argon2id$...`): a copy of the store does not let a short
    /// secret be guessed offline at SHA-256 speed.
    Argon2id(String),
    /// An unsalted SHA-256, as the operator configured it.
    Sha256(SecretHash),
}

impl TryFrom<String> for StoredSecret {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.starts_with("$argon2id$") {
            return if crate::password::is_argon2id_hash(&value) {
                Ok(Self::Argon2id(value))
            } else {
                Err("not an argon2id PHC string".to_owned())
            };
        }
        SecretHash::from_base64(&value).map(Self::Sha256)
    }
}

impl From<StoredSecret> for String {
    fn from(value: StoredSecret) -> Self {
        match value {
            StoredSecret::Argon2id(phc) => phc,
            StoredSecret::Sha256(hash) => hash.to_base64url(),
        }
    }
}

/// Base64url without padding, as JOSE uses it.
#[must_use]
pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes [`b64url`]; `None` for anything else.
#[must_use]
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
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
    fn a_stored_secret_reads_back_as_the_form_it_was_stored_in() {
        let phc = crate::password::hash_password("s3cret", &crate::random::Rng::default()).unwrap();
        for stored in [StoredSecret::Argon2id(phc.clone()), StoredSecret::Sha256(SecretHash::of("s3cret"))] {
            let json = serde_json::to_string(&stored).unwrap();
            assert_eq!(serde_json::from_str::<StoredSecret>(&json).unwrap(), stored);
        }
        // Resources stored before argon2id held bare SHA-256 strings: still read.
        let legacy = serde_json::to_string(&SecretHash::of("s3cret")).unwrap();
        assert_eq!(
            serde_json::from_str::<StoredSecret>(&legacy).unwrap(),
            StoredSecret::Sha256(SecretHash::of("s3cret"))
        );
        assert!(serde_json::from_str::<StoredSecret>("\"$argon2id$broken\"").is_err());
    }

    #[test]
    fn hash_round_trips_through_base64() {
        let hash = SecretHash::of("x");
        assert_eq!(SecretHash::from_base64(&hash.to_base64url()), Ok(hash));
        assert!(SecretHash::from_base64("AAAA").is_err());
    }
}
