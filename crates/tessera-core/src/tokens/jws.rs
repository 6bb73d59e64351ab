//! Compact JWS: signing with the cached key pair, and verifying Tessera's own tokens.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::key_ring::KeySet;
use super::keys::{KeyError, SigningKey};
use crate::random::Rng;
use crate::secret::b64url;

/// Why a token is not a valid JWS of this issuer.
#[derive(Debug, thiserror::Error)]
pub enum JwsError {
    #[error("malformed JWS header")]
    Header,
    #[error("no published key has this kid")]
    UnknownKey,
    #[error("unexpected typ or alg")]
    UnexpectedHeader,
    #[error("signature or payload invalid: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
}

/// Signs `claims` as a compact JWS with the precomputed `at+jwt` header of `key`.
///
/// # Errors
/// When signing fails.
pub fn sign_access_token(claims: &impl Serialize, key: &SigningKey, rng: &Rng) -> Result<String, KeyError> {
    sign_compact(key.access_token_header(), claims, key, rng)
}

/// Signs `claims` as an ID token (`typ: JWT`, OpenID Connect Core §2).
///
/// # Errors
/// When signing fails.
pub fn sign_id_token(claims: &impl Serialize, key: &SigningKey, rng: &Rng) -> Result<String, KeyError> {
    sign_compact(key.id_token_header(), claims, key, rng)
}

fn sign_compact(
    header: &str,
    claims: &impl Serialize,
    key: &SigningKey,
    rng: &Rng,
) -> Result<String, KeyError> {
    let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
    let mut token = String::with_capacity(header.len() + payload.len() * 4 / 3 + 100);
    token.push_str(header);
    token.push('.');
    token.push_str(&b64url(payload));
    let signature = key.sign(token.as_bytes(), rng)?;
    token.push('.');
    token.push_str(&b64url(signature));
    Ok(token)
}

/// Verifies a JWS signed by one of the published keys, with `typ` `expected_typ`,
/// and returns its claims. Expiry and audience are the caller's to judge (with its clock).
///
/// # Errors
/// When the header, key, algorithm or signature is wrong.
pub fn verify_own<T: DeserializeOwned>(
    token: &str,
    keys: &KeySet,
    expected_typ: &str,
) -> Result<T, JwsError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| JwsError::Header)?;
    let kid = header.kid.as_deref().ok_or(JwsError::Header)?;
    let key = keys.published(kid).ok_or(JwsError::UnknownKey)?;
    // Never trust the header's alg: it must be the one the key was made for.
    if header.alg != key.algorithm.jsonwebtoken() || header.typ.as_deref() != Some(expected_typ) {
        return Err(JwsError::UnexpectedHeader);
    }
    let mut validation = jsonwebtoken::Validation::new(key.algorithm.jsonwebtoken());
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    Ok(jsonwebtoken::decode::<T>(token, &key.decoding, &validation)?.claims)
}
