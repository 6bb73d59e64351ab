//! DPoP proofs (RFC 9449 §4): a JWT signed with the client's key, naming the request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::secret::{b64url, sha256};
use crate::{ErrorCode, OAuthError, Timestamp};

/// Asymmetric algorithms only (RFC 9449 §4.2): never `none` or a MAC.
pub const ALGORITHMS: [Algorithm; 5] =
    [Algorithm::ES256, Algorithm::ES384, Algorithm::RS256, Algorithm::PS256, Algorithm::EdDSA];
/// How old a proof may be, and how far in the future, in seconds.
const MAX_AGE: i64 = 300;
const LEEWAY: i64 = 60;
/// JWK members only a private or symmetric key has (RFC 9449 §4.3 item 6).
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];
/// Proof headers remembered by [`ProofKeys`]; past this, it starts over.
const MAX_CACHED_HEADERS: usize = 4096;

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

pub(crate) fn invalid(description: &'static str) -> OAuthError {
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

/// A proof header that passed its checks (`typ`, `alg`, a public `jwk` usable with
/// `alg`), with the key ready to verify and its RFC 7638 thumbprint.
struct ProofKey {
    jkt: String,
    verifier: Verifier,
}

enum Verifier {
    /// ES256, the usual proof algorithm: the point parsed once, not per proof.
    Es256(ParsedPublicKey),
    /// The others, through jsonwebtoken.
    Other(Algorithm, DecodingKey),
}

impl ProofKey {
    /// Checks a proof's encoded header (RFC 9449 §4.3 items 3-6) and imports its key.
    fn parse(encoded_header: &str) -> Result<Self, OAuthError> {
        let malformed = || invalid("malformed DPoP proof");
        let header = URL_SAFE_NO_PAD.decode(encoded_header).map_err(|_| malformed())?;
        // RFC 9449 §4.3 item 6: judged on the header as sent, since `Jwk` drops the
        // members it does not know (`d` and the other private ones among them).
        let raw: serde_json::Value = serde_json::from_slice(&header).map_err(|_| malformed())?;
        let raw_jwk = raw.get("jwk").ok_or_else(|| invalid("the proof carries no jwk"))?;
        if PRIVATE_MEMBERS.iter().any(|member| raw_jwk.get(member).is_some()) {
            return Err(invalid("the jwk must be a public key"));
        }
        let header: jsonwebtoken::Header = serde_json::from_value(raw).map_err(|_| malformed())?;
        if header.typ.as_deref() != Some("dpop+jwt") {
            return Err(invalid("typ must be dpop+jwt"));
        }
        if !ALGORITHMS.contains(&header.alg) {
            return Err(invalid("unsupported DPoP algorithm"));
        }
        let jwk: Jwk = header.jwk.ok_or_else(|| invalid("the proof carries no jwk"))?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| invalid("unusable jwk"))?;
        let verifier = if header.alg == Algorithm::ES256 {
            // The bytes jsonwebtoken's ES256 verifier would parse for every proof.
            let point = key.try_get_as_bytes().map_err(|_| invalid("unusable jwk"))?;
            Verifier::Es256(
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).map_err(|_| invalid("unusable jwk"))?,
            )
        } else {
            Verifier::Other(header.alg, key)
        };
        let jkt = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|_| invalid("unusable jwk"))?;
        Ok(Self { jkt, verifier })
    }

    /// Checks the JWS signature over `message` (`header.payload`).
    fn verify(&self, message: &str, signature: &str) -> Result<(), OAuthError> {
        let bad = || invalid("bad DPoP proof signature");
        let valid = match &self.verifier {
            Verifier::Es256(key) => {
                let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| bad())?;
                key.verify_sig(message.as_bytes(), &signature).is_ok()
            }
            Verifier::Other(alg, key) => {
                jsonwebtoken::crypto::verify(signature, message.as_bytes(), key, *alg).map_err(|_| bad())?
            }
        };
        if valid { Ok(()) } else { Err(bad()) }
    }
}

/// Checked proof headers by their exact encoded text. A client sends the same
/// header (`typ`, `alg`, `jwk`) with every proof, so its parsing, key import and
/// thumbprint are done once; what is kept depends only on that text. Replay is not
/// judged here: that stays with the store, across instances.
#[derive(Default)]
pub struct ProofKeys {
    headers: Mutex<HashMap<String, Arc<ProofKey>>>,
}

impl std::fmt::Debug for ProofKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofKeys").finish_non_exhaustive()
    }
}

impl ProofKeys {
    /// [`check`], with the header's checks and key remembered between proofs.
    ///
    /// # Errors
    /// `invalid_dpop_proof` for any failed check.
    pub fn check(
        &self,
        proof: &DpopProof,
        access_token: Option<&str>,
        now: Timestamp,
    ) -> Result<CheckedProof, OAuthError> {
        let segments = Segments::of(&proof.jwt)?;
        let header = segments.header;
        let cached = self.headers.lock().unwrap_or_else(PoisonError::into_inner).get(header).cloned();
        let key = match cached {
            Some(key) => key,
            None => {
                let key = Arc::new(ProofKey::parse(header)?);
                let mut headers = self.headers.lock().unwrap_or_else(PoisonError::into_inner);
                // Bounded: a flood of fresh keys costs a re-parse, never unbounded memory.
                if headers.len() >= MAX_CACHED_HEADERS {
                    headers.clear();
                }
                headers.insert(header.to_owned(), Arc::clone(&key));
                key
            }
        };
        check_with(&key, &segments, proof, access_token, now)
    }
}

/// The three segments of a compact JWS (RFC 7515 §7.1).
struct Segments<'a> {
    header: &'a str,
    /// `header.payload`, the signing input as sent (RFC 7515 §5.2).
    signing_input: &'a str,
    payload: &'a str,
    signature: &'a str,
}

impl<'a> Segments<'a> {
    fn of(jwt: &'a str) -> Result<Self, OAuthError> {
        let malformed = || invalid("malformed DPoP proof");
        let (signing_input, signature) = jwt.rsplit_once('.').ok_or_else(malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or_else(malformed)?;
        if payload.contains('.') {
            return Err(malformed());
        }
        Ok(Self { header, signing_input, payload, signature })
    }
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
    let segments = Segments::of(&proof.jwt)?;
    check_with(&ProofKey::parse(segments.header)?, &segments, proof, access_token, now)
}

fn check_with(
    key: &ProofKey,
    segments: &Segments<'_>,
    proof: &DpopProof,
    access_token: Option<&str>,
    now: Timestamp,
) -> Result<CheckedProof, OAuthError> {
    key.verify(segments.signing_input, segments.signature)?;
    let payload = URL_SAFE_NO_PAD.decode(segments.payload).map_err(|_| invalid("malformed DPoP proof"))?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| invalid("malformed DPoP proof"))?;
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
    Ok(CheckedProof { jkt: key.jkt.clone(), jti, iat, nonce: claims.nonce })
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
    use serde_json::json;

    use super::{DpopProof, ProofKeys, check, same_uri};
    use crate::random::Rng;
    use crate::secret::b64url;
    use crate::tokens::{SigningAlgorithm, SigningKey, generate_pkcs8};

    const URL: &str = "https://as.example/token";

    fn key(rng: &Rng) -> SigningKey {
        let pkcs8 = generate_pkcs8(SigningAlgorithm::Es256, rng).unwrap();
        SigningKey::from_pkcs8("k", SigningAlgorithm::Es256, &pkcs8).unwrap()
    }

    /// A proof signed by `key` whose claims are `claims`.
    fn proof(key: &SigningKey, rng: &Rng, claims: &serde_json::Value) -> DpopProof {
        let mut jwk = key.public_jwk();
        for member in ["kid", "use", "alg"] {
            jwk.as_object_mut().unwrap().remove(member);
        }
        let header = b64url(json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": jwk }).to_string());
        let input = format!("{header}.{}", b64url(claims.to_string()));
        let signature = b64url(key.sign(input.as_bytes(), rng).unwrap());
        DpopProof { jwt: format!("{input}.{signature}"), method: "POST".into(), url: URL.into() }
    }

    fn claims(jti: &str) -> serde_json::Value {
        json!({ "jti": jti, "htm": "POST", "htu": URL, "iat": 1000 })
    }

    #[test]
    fn cached_and_uncached_checks_agree() {
        let (rng, keys) = (Rng::default(), ProofKeys::default());
        let key = key(&rng);
        for jti in ["a", "b", "c"] {
            let proof = proof(&key, &rng, &claims(jti));
            let cached = keys.check(&proof, None, 1000).unwrap();
            assert_eq!(cached, check(&proof, None, 1000).unwrap());
            assert_eq!(cached.jti, jti);
        }
        assert_eq!(keys.headers.lock().unwrap().len(), 1, "one header, parsed once");
    }

    #[test]
    fn a_cached_header_does_not_spare_the_signature_check() {
        let (rng, keys) = (Rng::default(), ProofKeys::default());
        let key = key(&rng);
        keys.check(&proof(&key, &rng, &claims("a")), None, 1000).unwrap();
        // Same header, claims swapped after signing.
        let signed = proof(&key, &rng, &claims("b"));
        let (input, signature) = signed.jwt.rsplit_once('.').unwrap();
        let (header, _) = input.split_once('.').unwrap();
        let forged = DpopProof {
            jwt: format!("{header}.{}.{signature}", b64url(claims("c").to_string())),
            ..signed.clone()
        };
        assert!(keys.check(&forged, None, 1000).is_err());
        // Another key's signature over a cached header fails too.
        let other = proof(&self::key(&rng), &rng, &claims("d"));
        let (_, other_signature) = other.jwt.rsplit_once('.').unwrap();
        let stolen = DpopProof { jwt: format!("{input}.{other_signature}"), ..signed };
        assert!(keys.check(&stolen, None, 1000).is_err());
    }

    #[test]
    fn proofs_with_extra_segments_are_malformed() {
        let (rng, keys) = (Rng::default(), ProofKeys::default());
        let mut proof = proof(&key(&rng), &rng, &claims("a"));
        proof.jwt = format!("{}.extra", proof.jwt);
        assert!(keys.check(&proof, None, 1000).is_err());
        assert!(check(&proof, None, 1000).is_err());
    }

    #[test]
    fn a_proof_whose_jwk_carries_a_private_member_is_refused() {
        let (rng, keys) = (Rng::default(), ProofKeys::default());
        let key = key(&rng);
        for member in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            let mut jwk = key.public_jwk();
            jwk.as_object_mut().unwrap().insert(member.into(), json!("AAAA"));
            let header = b64url(json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": jwk }).to_string());
            let input = format!("{header}.{}", b64url(claims(member).to_string()));
            let signature = b64url(key.sign(input.as_bytes(), &rng).unwrap());
            let proof =
                DpopProof { jwt: format!("{input}.{signature}"), method: "POST".into(), url: URL.into() };
            let refused = keys.check(&proof, None, 1000).unwrap_err();
            assert_eq!(refused.code, crate::ErrorCode::InvalidDpopProof, "{member}");
            assert!(check(&proof, None, 1000).is_err(), "{member}");
        }
    }

    #[test]
    fn htu_ignores_query_fragment_case_and_default_ports() {
        assert!(same_uri("https://AS.example/token?x=1#f", "https://as.example:443/token"));
        assert!(!same_uri("https://as.example/token", "https://as.example/other"));
        assert!(!same_uri("http://as.example/token", "https://as.example/token"));
    }
}
