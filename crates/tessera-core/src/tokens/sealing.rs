//! Private keys at rest: AES-256-GCM under a key derived from `signing.encryption_key`.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};

use crate::random::Rng;
use crate::secret::Secret;

/// Seals and opens stored private keys; without an encryption key it passes them through.
pub struct KeySealer {
    key: Option<LessSafeKey>,
}

impl std::fmt::Debug for KeySealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySealer").field("encrypts", &self.key.is_some()).finish()
    }
}

impl KeySealer {
    /// A sealer for the configured secret, or a pass-through when there is none.
    #[must_use]
    pub fn new(secret: Option<&Secret>) -> Self {
        let key = secret.and_then(|secret| {
            // RFC 5869: HKDF turns an operator's passphrase into a uniform 256-bit key.
            let prk = Salt::new(HKDF_SHA256, b"tessera signing keys").extract(secret.expose().as_bytes());
            let okm = prk.expand(&[b"aes-256-gcm"], &AES_256_GCM).ok()?;
            UnboundKey::from(okm).into()
        });
        Self { key: key.map(LessSafeKey::new) }
    }

    /// Whether keys are encrypted before they are stored.
    #[must_use]
    pub fn encrypts(&self) -> bool {
        self.key.is_some()
    }

    /// Encrypts `pkcs8` bound to `kid`: nonce || ciphertext || tag. Plain when not encrypting.
    ///
    /// # Errors
    /// When encryption fails.
    pub fn seal(&self, kid: &str, pkcs8: &[u8], rng: &Rng) -> Result<Vec<u8>, String> {
        let Some(key) = &self.key else { return Ok(pkcs8.to_vec()) };
        let nonce_bytes = rng.bytes::<NONCE_LEN>();
        let mut in_out = pkcs8.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(kid.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| "key encryption failed".to_owned())?;
        let mut sealed = nonce_bytes.to_vec();
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Decrypts what [`Self::seal`] produced.
    ///
    /// # Errors
    /// When the key is sealed but no encryption key is set, or the secret is wrong.
    pub fn open(&self, kid: &str, stored: &[u8], sealed: bool) -> Result<Vec<u8>, String> {
        if !sealed {
            return Ok(stored.to_vec());
        }
        let Some(key) = &self.key else {
            return Err("the key is encrypted; set signing.encryption_key".to_owned());
        };
        let (nonce, ciphertext) = stored.split_at_checked(NONCE_LEN).ok_or("sealed key is truncated")?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce")?;
        let mut in_out = ciphertext.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut in_out)
            .map_err(|_| "cannot decrypt the key: wrong signing.encryption_key?".to_owned())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_secret_and_kid() {
        let rng = Rng::default();
        let sealer = KeySealer::new(Some(&Secret::new("operator secret")));
        let sealed = sealer.seal("k1", b"private", &rng).unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        assert_eq!(sealer.open("k1", &sealed, true).unwrap(), b"private");
        assert!(sealer.open("k2", &sealed, true).is_err());
        assert!(KeySealer::new(Some(&Secret::new("other"))).open("k1", &sealed, true).is_err());
        assert!(KeySealer::new(None).open("k1", &sealed, true).is_err());
    }
}
