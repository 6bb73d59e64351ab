//! The keys the BFF signs with: a DPoP key per session (RFC 9449), held server-side
//! and stored with the session so that every instance can use it, and the client's own
//! key for `private_key_jwt` (RFC 7523, `client_key`). Signing is jsonwebtoken's (on
//! aws-lc-rs); key generation is aws-lc-rs's.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A private key with its algorithm and public JWK.
pub struct SigningKey {
    key: EncodingKey,
    alg: Algorithm,
    /// The public key, `kid` = its RFC 7638 thumbprint.
    jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("alg", &self.alg).field("kid", &self.jwk.common.key_id).finish()
    }
}

impl SigningKey {
    /// A fresh ES256 key; also returns its PKCS#8 document, to store with the session.
    pub fn generate_es256() -> Result<(Self, Vec<u8>), String> {
        let document = EcdsaKeyPair::generate_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .map_err(|_| "cannot generate a P-256 key".to_owned())?;
        let pkcs8 = document.as_ref().to_vec();
        Ok((Self::from_es256_pkcs8(&pkcs8)?, pkcs8))
    }

    /// An ES256 key from its PKCS#8 document.
    pub fn from_es256_pkcs8(pkcs8: &[u8]) -> Result<Self, String> {
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|_| "not a P-256 PKCS#8 key".to_owned())?;
        Self::new(EncodingKey::from_ec_der(pkcs8), Algorithm::ES256)
    }

    /// A PEM private key: P-256 (ES256), RSA (RS256) or Ed25519 (EdDSA).
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        if let Ok(key) = EncodingKey::from_ec_pem(pem) {
            if let Ok(key) = Self::new(key, Algorithm::ES256) {
                return Ok(key);
            }
            return Err("an EC key that is not on P-256 (only ES256 is supported)".to_owned());
        }
        if let Ok(key) = EncodingKey::from_rsa_pem(pem) {
            return Self::new(key, Algorithm::RS256);
        }
        if let Ok(key) = EncodingKey::from_ed_pem(pem) {
            return Self::new(key, Algorithm::EdDSA);
        }
        Err("not a PEM private key (P-256, RSA or Ed25519, PKCS#8)".to_owned())
    }

    fn new(key: EncodingKey, alg: Algorithm) -> Result<Self, String> {
        let mut jwk = Jwk::from_encoding_key(&key, alg).map_err(|e| format!("no public key: {e}"))?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| format!("no thumbprint: {e}"))?;
        jwk.common.key_id = Some(kid);
        // A test signature, so that a key that cannot sign is refused at start.
        jsonwebtoken::encode(&Header::new(alg), &json!({}), &key).map_err(|e| format!("cannot sign: {e}"))?;
        Ok(Self { key, alg, jwk })
    }

    /// The public key as a JWK, for the provider's client registration.
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The RFC 7638 thumbprint: the `jkt` tokens bound to this key carry.
    pub fn thumbprint(&self) -> &str {
        self.jwk.common.key_id.as_deref().unwrap_or_default()
    }

    /// A DPoP proof (RFC 9449 §4.2) for `method` at `url` (query and fragment are
    /// dropped, §4.2 `htu`), with `ath` when presenting `access_token` (§4.3) and the
    /// server's `nonce` when it asked for one (§8).
    pub fn dpop_proof(
        &self,
        method: &str,
        url: &str,
        now: i64,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, String> {
        let htu = url.split(['?', '#']).next().unwrap_or(url);
        let mut claims = json!({ "jti": random_id()?, "htm": method, "htu": htu, "iat": now });
        if let Some(token) = access_token {
            let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
            claims["ath"] = Value::String(URL_SAFE_NO_PAD.encode(hash));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = Value::String(nonce.to_owned());
        }
        let mut public = self.jwk.clone();
        public.common.key_id = None;
        let mut header = Header::new(self.alg);
        header.typ = Some("dpop+jwt".to_owned());
        header.jwk = Some(public);
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| format!("cannot sign a DPoP proof: {e}"))
    }

    /// A client assertion (RFC 7523 §3, OpenID Connect Core §9 `private_key_jwt`):
    /// `iss` = `sub` = the client, `aud` = the token endpoint, one minute of life.
    pub fn client_assertion(&self, client_id: &str, audience: &str, now: i64) -> Result<String, String> {
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": random_id()?,
            "iat": now,
            "exp": now + 60,
        });
        let mut header = Header::new(self.alg);
        header.kid = self.jwk.common.key_id.clone();
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| format!("cannot sign an assertion: {e}"))
    }
}

fn random_id() -> Result<String, String> {
    let mut bytes = [0_u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "no randomness".to_owned())?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn part(jwt: &str, index: usize) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').nth(index).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn a_dpop_proof_carries_the_public_key_the_bound_url_and_the_token_hash() {
        let (key, pkcs8) = SigningKey::generate_es256().unwrap();
        let again = SigningKey::from_es256_pkcs8(&pkcs8).unwrap();
        assert_eq!(key.thumbprint(), again.thumbprint(), "the stored key is the same key");
        let proof =
            key.dpop_proof("GET", "https://api.example/x?q=1#f", 100, Some("tok"), Some("n1")).unwrap();
        let (header, claims) = (part(&proof, 0), part(&proof, 1));
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert!(header["jwk"]["x"].is_string() && header["jwk"].get("d").is_none(), "public key only");
        assert_eq!(claims["htu"], "https://api.example/x");
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["nonce"], "n1");
        let expected = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"tok"));
        assert_eq!(claims["ath"], expected.as_str());
        let other = key.dpop_proof("GET", "https://api.example/x", 100, None, None).unwrap();
        assert_ne!(part(&other, 1)["jti"], claims["jti"], "a fresh jti per proof");
        assert!(part(&other, 1).get("ath").is_none());
    }

    #[test]
    fn a_pem_that_is_not_a_private_key_is_refused() {
        assert!(
            SigningKey::from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err()
        );
        assert!(SigningKey::from_pem(b"not pem").is_err());
    }
}
