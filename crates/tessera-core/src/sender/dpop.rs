//! DPoP proofs (RFC 9449 §4): a JWT signed with the client's key, naming the request.

use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::secret::{b64url, sha256};
use crate::{ErrorCode, OAuthError, Provider, Timestamp};

/// Asymmetric algorithms only (RFC 9449 §4.2): never `none` or a MAC.
pub const ALGORITHMS: [Algorithm; 5] =
    [Algorithm::ES256, Algorithm::ES384, Algorithm::RS256, Algorithm::PS256, Algorithm::EdDSA];
/// How old a proof may be, and how far in the future, in seconds.
const MAX_AGE: i64 = 300;
const LEEWAY: i64 = 60;
/// JWK members only a private or symmetric key has (RFC 9449 §4.3 item 6).
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// The names of [`ALGORITHMS`], for discovery.
#[must_use]
pub fn algorithm_names() -> Vec<String> {
    ALGORITHMS.iter().map(|alg| format!("{alg:?}")).collect()
}

/// A proof as received, with the request it must describe.
#[derive(Debug, Clone)]
pub struct DpopProof {
    pub jwt: String,
    pub method: String,
    pub url: String,
}

#[derive(Deserialize)]
struct Claims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<i64>,
    ath: Option<String>,
    nonce: Option<String>,
}

fn invalid(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidDpopProof, description)
}

/// A proof that passed every check but single use and the nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedProof {
    /// The RFC 7638 thumbprint of the proof's key.
    pub jkt: String,
    pub jti: String,
    pub iat: Timestamp,
    pub nonce: Option<String>,
}

impl CheckedProof {
    /// Until when the proof's `jti` must be remembered to refuse a replay.
    #[must_use]
    pub fn replay_until(&self) -> Timestamp {
        self.iat + MAX_AGE + LEEWAY
    }
}

/// Verifies a proof (RFC 9449 §4.3) and returns the key's thumbprint. With an
/// access token, the proof must also carry its hash (`ath`, §4.2). Each proof is
/// accepted once: its `jti` goes through the replay cache.
///
/// # Errors
/// `invalid_dpop_proof` for any failed check; `use_dpop_nonce` without a fresh nonce.
pub async fn verify(
    provider: &Provider,
    proof: &DpopProof,
    access_token: Option<&str>,
    now: Timestamp,
) -> Result<String, OAuthError> {
    let checked = check(proof, access_token, now)?;
    // RFC 9449 §8: when nonces are on, a proof without a fresh one is answered with one.
    if provider.settings.dpop_require_nonce
        && !checked.nonce.as_deref().is_some_and(|nonce| provider.dpop_nonce_is_fresh(nonce, now))
    {
        return Err(OAuthError::new(ErrorCode::UseDpopNonce, "send the proof again with the DPoP-Nonce"));
    }
    // RFC 9449 §11.1: a proof is used once.
    let replay_key = format!("dpop:{}:{}", checked.jkt, checked.jti);
    if !provider.store.remember_once(&replay_key, checked.replay_until(), now).await? {
        return Err(invalid("the DPoP proof was already used"));
    }
    Ok(checked.jkt)
}

/// Every check of RFC 9449 §4.3 that needs no state: header, key, signature, `htm`,
/// `htu`, `iat` window and `ath`. For resource servers as well as this server.
///
/// # Errors
/// `invalid_dpop_proof` for any failed check.
pub fn check(
    proof: &DpopProof,
    access_token: Option<&str>,
    now: Timestamp,
) -> Result<CheckedProof, OAuthError> {
    let header = jsonwebtoken::decode_header(&proof.jwt).map_err(|_| invalid("malformed DPoP proof"))?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err(invalid("typ must be dpop+jwt"));
    }
    if !ALGORITHMS.contains(&header.alg) {
        return Err(invalid("unsupported DPoP algorithm"));
    }
    let jwk: Jwk = header.jwk.ok_or_else(|| invalid("the proof carries no jwk"))?;
    let jwk_json = serde_json::to_value(&jwk).map_err(|_| invalid("bad jwk"))?;
    if PRIVATE_MEMBERS.iter().any(|member| jwk_json.get(member).is_some()) {
        return Err(invalid("the jwk must be a public key"));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| invalid("unusable jwk"))?;
    let mut validation = Validation::new(header.alg);
    // DEPENDENCIES.md trap 4: no `exp` in a proof; `iat` is checked below with our clock.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Claims>(&proof.jwt, &key, &validation)
        .map_err(|_| invalid("bad DPoP proof signature"))?
        .claims;
    if claims.htm.as_deref() != Some(proof.method.as_str()) {
        return Err(invalid("htm does not match the request method"));
    }
    if !same_uri(claims.htu.as_deref().unwrap_or_default(), &proof.url) {
        return Err(invalid("htu does not match the request URI"));
    }
    let iat = claims.iat.ok_or_else(|| invalid("the proof has no iat"))?;
    if iat > now + LEEWAY || iat < now - MAX_AGE {
        return Err(invalid("the proof is too old or from the future"));
    }
    if let Some(token) = access_token
        && claims.ath.as_deref() != Some(b64url(sha256(token.as_bytes())).as_str())
    {
        return Err(invalid("ath does not match the access token"));
    }
    let jti = claims.jti.ok_or_else(|| invalid("the proof has no jti"))?;
    let jkt = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|_| invalid("unusable jwk"))?;
    Ok(CheckedProof { jkt, jti, iat, nonce: claims.nonce })
}

/// RFC 9449 §4.3 item 9: compare without query and fragment, after RFC 3986 §6
/// normalisation (case of scheme and host, default ports).
fn same_uri(claimed: &str, actual: &str) -> bool {
    let (Ok(claimed), Ok(actual)) = (url::Url::parse(claimed), url::Url::parse(actual)) else {
        return false;
    };
    claimed.scheme() == actual.scheme()
        && claimed.host_str() == actual.host_str()
        && claimed.port_or_known_default() == actual.port_or_known_default()
        && claimed.path() == actual.path()
}

#[cfg(test)]
mod tests {
    use super::same_uri;

    #[test]
    fn htu_ignores_query_fragment_case_and_default_ports() {
        assert!(same_uri("https://AS.example/token?x=1#f", "https://as.example:443/token"));
        assert!(!same_uri("https://as.example/token", "https://as.example/other"));
        assert!(!same_uri("http://as.example/token", "https://as.example/token"));
    }
}
