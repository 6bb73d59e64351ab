//! `private_key_jwt`: a JWT signed with the client's private key (RFC 7523 §2.2, §3;
//! OpenID Connect Core §9). Keys come inline (`jwk`) or from the client's `jwks_uri`.

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::{MethodContext, Refusal};
use crate::OAuthError;
use crate::model::{Client, ClientCredential};
use crate::secret::Secret;
use crate::tokens::Audience;

/// Asymmetric algorithms only: no `none`, no HMAC (the server keeps no plain secrets).
const ALLOWED_ALGORITHMS: [Algorithm; 8] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::EdDSA,
];

/// The asymmetric algorithms accepted for client assertions, for discovery.
#[must_use]
pub fn allowed_algorithm_names() -> Vec<String> {
    ALLOWED_ALGORITHMS.iter().map(|alg| format!("{alg:?}")).collect()
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
}

/// The client the assertion claims to be (`sub`, RFC 7523 §3 item 2), read before the
/// signature is checked only to know whose keys to check it with.
pub(super) fn claimed_client_id(
    assertion: &Secret,
    form_client_id: Option<&str>,
) -> Result<String, OAuthError> {
    let claims: AssertionClaims = jsonwebtoken::dangerous::insecure_decode(assertion.expose())
        .map(|data| data.claims)
        .map_err(|_| OAuthError::invalid_client("malformed client assertion"))?;
    let subject = claims.sub.ok_or_else(|| OAuthError::invalid_client("client assertion has no sub"))?;
    if form_client_id.is_some_and(|id| id != subject) {
        return Err(OAuthError::invalid_client("client_id does not match the assertion"));
    }
    Ok(subject)
}

/// Verifies signature, claims and single use of the assertion.
pub(super) async fn verify(
    cx: &MethodContext<'_>,
    client: &Client,
    assertion: &Secret,
) -> Result<(), Refusal> {
    let token = assertion.expose();
    let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed JWS header")?;
    if !ALLOWED_ALGORITHMS.contains(&header.alg) {
        return Err(format!("algorithm {:?} not allowed", header.alg).into());
    }
    let now = cx.now;
    let mut claims = None;
    for refresh in [false, true] {
        let keys = client_keys(cx, client, refresh).await?;
        claims = keys
            .iter()
            .filter(|jwk| key_fits(jwk, header.alg, header.kid.as_deref()))
            .find_map(|jwk| check_signature(token, jwk, header.alg));
        // Refetch a jwks_uri once when no key fits: the client may have rotated.
        if claims.is_some() || !has_jwks_uri(client) {
            break;
        }
    }
    let claims = claims.ok_or("no registered key verifies the assertion")?;
    check_claims(cx, client, &claims)?;
    let jti = claims.jti.as_deref().ok_or("assertion has no jti")?;
    let exp = claims.exp.unwrap_or(now);
    let skew = cx.settings.clock_skew;
    let key = format!("client_assertion:{}:{jti}", client.client_id);
    if !cx.replay.remember_once(&key, exp + skew, now).await.map_err(|e| format!("replay store: {e}"))? {
        return Err("assertion jti replayed".into());
    }
    Ok(())
}

fn has_jwks_uri(client: &Client) -> bool {
    client.credentials.iter().any(|c| matches!(c, ClientCredential::JwksUri { .. }))
}

async fn client_keys(cx: &MethodContext<'_>, client: &Client, refresh: bool) -> Result<Vec<Jwk>, Refusal> {
    let mut keys = Vec::new();
    for credential in client.credentials.iter().filter(|c| c.is_current(cx.now)) {
        match credential {
            ClientCredential::Jwk { jwk, .. } if !refresh => {
                keys.extend(serde_json::from_value::<Jwk>(jwk.clone()).ok());
            }
            ClientCredential::JwksUri { jwks_uri, .. } => {
                let fetched =
                    cx.jwks.keys(jwks_uri, cx.now, refresh).await.map_err(|e| format!("jwks_uri: {e}"))?;
                keys.extend(fetched.iter().cloned());
            }
            _ => {}
        }
    }
    Ok(keys)
}

/// Whether `jwk` may verify a JWS with `alg` and `kid`: same key id when one is named,
/// same algorithm when the key names one, and a public key of the right type.
fn key_fits(jwk: &Jwk, alg: Algorithm, kid: Option<&str>) -> bool {
    if kid.is_some() && jwk.common.key_id.as_deref() != kid {
        return false;
    }
    if let Some(key_alg) = jwk.common.key_algorithm
        && Algorithm::try_from(key_alg).ok() != Some(alg)
    {
        return false;
    }
    !matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
}

fn check_signature(token: &str, jwk: &Jwk, alg: Algorithm) -> Option<AssertionClaims> {
    let key = DecodingKey::from_jwk(jwk).ok()?;
    let mut validation = Validation::new(alg);
    // Times and audience are checked below with the server's clock.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<AssertionClaims>(token, &key, &validation).ok().map(|data| data.claims)
}

/// draft-ietf-oauth-rfc7523bis §4: `aud` is the issuer as its sole value, so an
/// assertion made for another server (or for several) cannot be replayed here. As a
/// single string, the URL of the endpoint called and the token endpoint's are still
/// accepted: RFC 7523 §3 item 3 and OpenID Connect Core §9 name the token endpoint,
/// RFC 9126 §2 requires PAR to accept it, and clients such as Authlib sign every
/// assertion for it (revocation and introspection included). Every such URL names this
/// server alone; an array holding anything but the issuer is refused.
fn audience_accepted(aud: &Audience, issuer: &str, endpoint: &str, token_endpoints: [&str; 2]) -> bool {
    match aud {
        Audience::One(one) => one == issuer || one == endpoint || token_endpoints.contains(&one.as_str()),
        Audience::Many(many) => matches!(many.as_slice(), [only] if only == issuer),
    }
}

/// RFC 7523 §3: `iss` and `sub` are the client, `aud` names this server, `exp` is
/// present, not past and not too far ahead; `nbf` and `iat` not in the future.
fn check_claims(cx: &MethodContext<'_>, client: &Client, claims: &AssertionClaims) -> Result<(), Refusal> {
    let (settings, now) = (cx.settings, cx.now);
    let skew = settings.clock_skew;
    let client_id = client.client_id.as_str();
    if claims.iss.as_deref() != Some(client_id) || claims.sub.as_deref() != Some(client_id) {
        return Err("iss and sub must both be the client_id".into());
    }
    let aud = claims.aud.as_ref().ok_or("assertion has no aud")?;
    if !audience_accepted(aud, cx.issuer, cx.endpoint.url, cx.token_endpoints) {
        return Err(
            "aud must be the issuer alone (or, as one string, this endpoint or the token endpoint)".into()
        );
    }
    let exp = claims.exp.ok_or("assertion has no exp")?;
    if exp + skew <= now {
        return Err("assertion expired".into());
    }
    if exp > now + settings.assertion_max_lifetime + skew {
        let (ahead, limit) = (exp - now, settings.assertion_max_lifetime);
        return Err(format!("assertion exp is {ahead} s ahead; assertion_max_lifetime is {limit} s").into());
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + skew) {
        return Err("assertion not yet valid (nbf)".into());
    }
    if claims.iat.is_some_and(|iat| iat > now + skew) {
        return Err("assertion issued in the future (iat)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::verify;
    use crate::client_auth::testing::{
        ISSUER, MTLS_TOKEN, NOW, Parts, TOKEN, assertion_claims, client, client_key, signed,
    };
    use crate::model::{AuthMethod, Client, ClientCredential};
    use crate::secret::Secret;
    use crate::tokens::SigningKey;

    const PAR: &str = "https://issuer.example/par";

    fn inline(key: &SigningKey) -> Client {
        client(
            &[AuthMethod::PrivateKeyJwt],
            vec![ClientCredential::Jwk { jwk: key.public_jwk(), expires: None }],
        )
    }

    async fn accepted(parts: &Parts, endpoint: &str, client: &Client, assertion: &str) -> bool {
        verify(&parts.at(endpoint, NOW), client, &Secret::new(assertion)).await.is_ok()
    }

    #[tokio::test]
    async fn an_assertion_signed_by_the_clients_key_for_the_issuer_is_accepted_once() {
        let (parts, key) = (Parts::new(), client_key("k1"));
        let assertion = signed(&key, &assertion_claims(json!(ISSUER), "j1"));
        assert!(accepted(&parts, TOKEN, &inline(&key), &assertion).await);
        assert!(!accepted(&parts, TOKEN, &inline(&key), &assertion).await, "RFC 7523 §3 item 7: jti once");
    }

    #[tokio::test]
    async fn the_token_endpoint_and_its_mtls_alias_are_accepted_as_aud_at_every_endpoint() {
        let (parts, key) = (Parts::new(), client_key("k1"));
        for (n, (aud, endpoint)) in
            [(TOKEN, TOKEN), (MTLS_TOKEN, TOKEN), (TOKEN, PAR), (MTLS_TOKEN, PAR), (PAR, PAR)]
                .into_iter()
                .enumerate()
        {
            let assertion = signed(&key, &assertion_claims(json!(aud), &format!("j{n}")));
            assert!(accepted(&parts, endpoint, &inline(&key), &assertion).await, "aud {aud} at {endpoint}");
        }
        let for_par = signed(&key, &assertion_claims(json!(PAR), "elsewhere"));
        assert!(
            !accepted(&parts, TOKEN, &inline(&key), &for_par).await,
            "an assertion for /par is not one for /token"
        );
    }

    #[tokio::test]
    async fn an_audience_naming_another_server_too_is_refused() {
        let (parts, key) = (Parts::new(), client_key("k1"));
        let shared = signed(&key, &assertion_claims(json!([ISSUER, "https://other.example"]), "j1"));
        assert!(!accepted(&parts, TOKEN, &inline(&key), &shared).await);
        let array_of_token = signed(&key, &assertion_claims(json!([TOKEN]), "j2"));
        assert!(
            !accepted(&parts, TOKEN, &inline(&key), &array_of_token).await,
            "rfc7523bis §4: the issuer alone"
        );
        let other = signed(&key, &assertion_claims(json!("https://other.example/token"), "j3"));
        assert!(!accepted(&parts, TOKEN, &inline(&key), &other).await);
    }

    #[tokio::test]
    async fn wrong_claims_or_times_are_refused() {
        let (parts, key) = (Parts::new(), client_key("k1"));
        let with = |change: &dyn Fn(&mut serde_json::Value)| {
            let mut claims = assertion_claims(json!(ISSUER), "j1");
            change(&mut claims);
            signed(&key, &claims)
        };
        let cases = [
            ("another iss", with(&|c| c["iss"] = json!("other"))),
            ("expired", with(&|c| c["exp"] = json!(NOW - 31))),
            ("too far ahead", with(&|c| c["exp"] = json!(NOW + 400))),
            ("not yet valid", with(&|c| c["nbf"] = json!(NOW + 60))),
            ("issued in the future", with(&|c| c["iat"] = json!(NOW + 60))),
            ("no jti", with(&|c| c.as_object_mut().unwrap().retain(|k, _| k != "jti"))),
            ("no exp", with(&|c| c.as_object_mut().unwrap().retain(|k, _| k != "exp"))),
        ];
        for (what, assertion) in cases {
            assert!(!accepted(&parts, TOKEN, &inline(&key), &assertion).await, "{what}");
        }
    }

    #[tokio::test]
    async fn a_key_the_client_did_not_register_verifies_nothing() {
        let (parts, key, stranger) = (Parts::new(), client_key("k1"), client_key("k1"));
        let forged = signed(&stranger, &assertion_claims(json!(ISSUER), "j1"));
        assert!(!accepted(&parts, TOKEN, &inline(&key), &forged).await);
        let hmac =
            format!("{}.{}.sig", crate::secret::b64url(r#"{"alg":"HS256"}"#), crate::secret::b64url("{}"));
        assert!(!accepted(&parts, TOKEN, &inline(&key), &hmac).await, "no symmetric algorithms");
    }

    #[tokio::test]
    async fn a_rotated_key_at_the_jwks_uri_is_fetched_again_when_none_fits() {
        let (parts, old, new) = (Parts::new(), client_key("old"), client_key("new"));
        let uri = "https://svc.example/jwks";
        parts.served.0.lock().unwrap().insert(uri.into(), json!({ "keys": [old.public_jwk()] }));
        let registered = client(
            &[AuthMethod::PrivateKeyJwt],
            vec![ClientCredential::JwksUri { jwks_uri: uri.into(), expires: None }],
        );
        assert!(
            accepted(&parts, TOKEN, &registered, &signed(&old, &assertion_claims(json!(ISSUER), "j1"))).await
        );
        parts.served.0.lock().unwrap().insert(uri.into(), json!({ "keys": [new.public_jwk()] }));
        let by_new = Secret::new(signed(&new, &assertion_claims(json!(ISSUER), "j2")));
        // A refetch is granted at most every 30 s per URI (a flood of unknown kids
        // cannot make the server hammer the client's host).
        assert!(verify(&parts.at(TOKEN, NOW + 10), &registered, &by_new).await.is_err());
        assert!(verify(&parts.at(TOKEN, NOW + 31), &registered, &by_new).await.is_ok());
    }
}
