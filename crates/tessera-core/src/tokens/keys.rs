//! Signing key pairs (aws-lc-rs), parsed once and kept, and their public JWKs.

use std::str::FromStr;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair,
};
use serde_json::json;

use crate::random::Rng;
use crate::secret::b64url;

/// A JWS algorithm Tessera signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SigningAlgorithm {
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "EdDSA")]
    EdDsa,
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "PS256")]
    Ps256,
}

impl SigningAlgorithm {
    /// OpenID Connect Core §3.1.3.6: `at_hash` is the left half of the hash the
    /// algorithm uses (SHA-512 for Ed25519), base64url-encoded.
    #[must_use]
    pub fn half_hash(self, value: &str) -> String {
        let algorithm = match self {
            Self::EdDsa => &aws_lc_rs::digest::SHA512,
            Self::Es256 | Self::Rs256 | Self::Ps256 => &aws_lc_rs::digest::SHA256,
        };
        let digest = aws_lc_rs::digest::digest(algorithm, value.as_bytes());
        let bytes = digest.as_ref();
        b64url(&bytes[..bytes.len() / 2])
    }

    /// The JWA name (RFC 7518 §3.1, RFC 8037 §3.1).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
        }
    }

    /// The same algorithm in jsonwebtoken's terms, for verification.
    #[must_use]
    pub fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Ps256 => jsonwebtoken::Algorithm::PS256,
        }
    }
}

impl FromStr for SigningAlgorithm {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        [Self::Es256, Self::EdDsa, Self::Rs256, Self::Ps256]
            .into_iter()
            .find(|alg| alg.as_str() == value)
            .ok_or_else(|| format!("unsupported signing algorithm `{value}` (ES256, EdDSA, RS256, PS256)"))
    }
}

/// A failure to make, load or use a signing key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot generate a {0} key")]
    Generate(&'static str),
    #[error("stored key {kid} cannot be loaded: {reason}")]
    Load { kid: String, reason: String },
    #[error("signing failed")]
    Sign,
    #[error("no signing key is active")]
    NoActiveKey,
}

enum KeyPair {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rsa(RsaKeyPair, &'static signature::RsaSignatureEncoding),
}

/// A private key, parsed once, ready to sign; with its `kid` and precomputed JWS header.
pub struct SigningKey {
    kid: String,
    algorithm: SigningAlgorithm,
    pair: KeyPair,
    /// base64url of `{"alg":…,"typ":"at+jwt","kid":…}`.
    access_token_header: String,
    /// base64url of `{"alg":…,"typ":"JWT","kid":…}`, for ID tokens.
    id_token_header: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Generates a new private key as PKCS#8 DER.
///
/// # Errors
/// When aws-lc-rs cannot generate the key.
pub fn generate_pkcs8(algorithm: SigningAlgorithm, rng: &Rng) -> Result<Vec<u8>, KeyError> {
    let failed = || KeyError::Generate(algorithm.as_str());
    match algorithm {
        SigningAlgorithm::Es256 => {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng.secure_random())
                .map(|doc| doc.as_ref().to_vec())
                .map_err(|_| failed())
        }
        // DEPENDENCIES.md trap 3: the v2 form is rejected by jsonwebtoken's JWK export.
        SigningAlgorithm::EdDsa => Ed25519KeyPair::generate_pkcs8v1(rng.secure_random())
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| failed()),
        SigningAlgorithm::Rs256 | SigningAlgorithm::Ps256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| failed())?;
            pair.as_der().map(|der| der.as_ref().to_vec()).map_err(|_| failed())
        }
    }
}

impl SigningKey {
    /// Parses a PKCS#8 private key.
    ///
    /// # Errors
    /// When the bytes are not a key of `algorithm`.
    pub fn from_pkcs8(kid: &str, algorithm: SigningAlgorithm, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let load_error = |reason: String| KeyError::Load { kid: kid.to_owned(), reason };
        let pair = match algorithm {
            SigningAlgorithm::Es256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                .map(KeyPair::Es256)
                .map_err(|e| load_error(e.to_string()))?,
            SigningAlgorithm::EdDsa => Ed25519KeyPair::from_pkcs8(pkcs8)
                .map(KeyPair::EdDsa)
                .map_err(|e| load_error(e.to_string()))?,
            SigningAlgorithm::Rs256 => RsaKeyPair::from_pkcs8(pkcs8)
                .map(|pair| KeyPair::Rsa(pair, &signature::RSA_PKCS1_SHA256))
                .map_err(|e| load_error(e.to_string()))?,
            SigningAlgorithm::Ps256 => RsaKeyPair::from_pkcs8(pkcs8)
                .map(|pair| KeyPair::Rsa(pair, &signature::RSA_PSS_SHA256))
                .map_err(|e| load_error(e.to_string()))?,
        };
        let header =
            |typ: &str| b64url(json!({ "alg": algorithm.as_str(), "typ": typ, "kid": kid }).to_string());
        Ok(Self {
            kid: kid.to_owned(),
            algorithm,
            pair,
            access_token_header: header("at+jwt"),
            id_token_header: header("JWT"),
        })
    }

    /// The key id (`kid`).
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWS algorithm.
    #[must_use]
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// The encoded protected header for access tokens (RFC 9068 §2.1).
    #[must_use]
    pub fn access_token_header(&self) -> &str {
        &self.access_token_header
    }

    /// The encoded protected header for ID tokens.
    #[must_use]
    pub fn id_token_header(&self) -> &str {
        &self.id_token_header
    }

    /// Signs `message` (the JWS signing input).
    ///
    /// # Errors
    /// When aws-lc-rs fails to sign.
    pub fn sign(&self, message: &[u8], rng: &Rng) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            KeyPair::Es256(pair) => pair
                .sign(rng.secure_random(), message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| KeyError::Sign),
            KeyPair::EdDsa(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            KeyPair::Rsa(pair, encoding) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(*encoding, rng.secure_random(), message, &mut signature)
                    .map_err(|_| KeyError::Sign)?;
                Ok(signature)
            }
        }
    }

    /// The public key as a JWK (RFC 7517) with `kid`, `alg` and `use: sig`.
    #[must_use]
    pub fn public_jwk(&self) -> serde_json::Value {
        let (kid, alg) = (&self.kid, self.algorithm.as_str());
        match &self.pair {
            KeyPair::Es256(pair) => {
                // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = pair.public_key().as_ref();
                let (x, y) = point.get(1..).unwrap_or_default().split_at(32);
                json!({ "kty": "EC", "crv": "P-256", "x": b64url(x), "y": b64url(y),
                        "kid": kid, "alg": alg, "use": "sig" })
            }
            KeyPair::EdDsa(pair) => json!({ "kty": "OKP", "crv": "Ed25519",
                "x": b64url(pair.public_key().as_ref()), "kid": kid, "alg": alg, "use": "sig" }),
            KeyPair::Rsa(pair, _) => {
                let public = pair.public_key();
                json!({ "kty": "RSA", "n": b64url(public.modulus().big_endian_without_leading_zero()),
                        "e": b64url(public.exponent().big_endian_without_leading_zero()),
                        "kid": kid, "alg": alg, "use": "sig" })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_loads_signs_and_verifies() {
        let rng = Rng::default();
        for algorithm in [
            SigningAlgorithm::Es256,
            SigningAlgorithm::EdDsa,
            SigningAlgorithm::Rs256,
            SigningAlgorithm::Ps256,
        ] {
            let pkcs8 = generate_pkcs8(algorithm, &rng).unwrap();
            let key = SigningKey::from_pkcs8("k1", algorithm, &pkcs8).unwrap();
            let signing_input = format!("{}.{}", key.access_token_header(), b64url(br#"{"sub":"x"}"#));
            let signature = key.sign(signing_input.as_bytes(), &rng).unwrap();
            let token = format!("{signing_input}.{}", b64url(signature));
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk()).unwrap();
            let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
            let mut validation = jsonwebtoken::Validation::new(algorithm.jsonwebtoken());
            validation.required_spec_claims.clear();
            validation.validate_exp = false;
            let data = jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
            assert_eq!(data.claims["sub"], "x", "{algorithm:?}");
        }
    }

    #[test]
    fn debug_never_prints_key_material() {
        let rng = Rng::default();
        let pkcs8 = generate_pkcs8(SigningAlgorithm::Es256, &rng).unwrap();
        let key = SigningKey::from_pkcs8("k1", SigningAlgorithm::Es256, &pkcs8).unwrap();
        assert_eq!(format!("{key:?}"), r#"SigningKey { kid: "k1", algorithm: Es256, .. }"#);
    }
}
