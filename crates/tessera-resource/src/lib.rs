//! Protecting an API with Tessera's access tokens. [`Verifier`] checks a request's
//! token the way RFC 9068 §4 and RFC 9449 §7 ask (signature against the issuer's
//! JWKS, `typ`, `iss`, `aud`, `exp`, and the DPoP proof when the token is bound);
//! [`Authenticated`] is the axum extractor that runs it. Certificate-bound tokens
//! (RFC 8705 §3) need the API's TLS layer to put the client's certificate into the
//! request as a [`PeerCertificate`].
//!
//! ```ignore
//! let verifier =
//!     Arc::new(Verifier::new("https://id.example.com", "api1").with_api_base("https://api1.example.com"));
//! let app = Router::new().route("/orders", get(orders)).with_state(verifier);
//! async fn orders(Authenticated(token): Authenticated) -> Result<String, Rejection> {
//!     token.require_scope("api1.read")?;
//!     Ok(format!("orders of {}", token.subject))
//! }
//! ```
//!
//! To be discoverable (an MCP server must be), describe the resource with
//! [`ResourceMetadata`] (RFC 9728): [`Verifier::resource_metadata_router`] serves the
//! document at `/.well-known/oauth-protected-resource/mcp` for the resource
//! `https://api.example.com/mcp`, and every 401 names it in `WWW-Authenticate`
//! (`resource_metadata="…"`, RFC 9728 §5.1), so a client holding no token finds the
//! authorization server from there.
//!
//! ```ignore
//! let metadata = ResourceMetadata::new("https://api.example.com/mcp", &["mcp:tools"])?
//!     .with_resource_name("Example MCP server");
//! let verifier = Arc::new(
//!     Verifier::new("https://id.example.com", "https://api.example.com/mcp")
//!         .with_api_base("https://api.example.com")
//!         .with_resource_metadata(metadata),
//! );
//! let app = Router::new()
//!     .route("/mcp", post(mcp))
//!     .merge(verifier.resource_metadata_router())
//!     .with_state(verifier);
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use tessera_core::clock::{Clock as _, SystemClock};
use tessera_core::sender::dpop::{self, DpopProof};

mod metadata;

pub use metadata::{InvalidResource, ResourceMetadata};

/// How long fetched keys are trusted before the JWKS is read again.
const KEYS_FRESH_FOR: Duration = Duration::from_secs(300);
/// The least time between refetches forced by an unknown `kid`, and between a failed
/// fetch and the next one.
const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// The largest JWKS read from the issuer.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// DPoP proofs remembered against replay at most (RFC 9449 §11.1); past it, new
/// proofs are refused until older ones expire, rather than replays let through.
const MAX_SEEN_PROOFS: usize = 100_000;
/// How often expired proofs are swept out of the replay cache, in seconds.
const SWEEP_EVERY: i64 = 30;

/// Checks access tokens for one API (`audience`) of one issuer.
pub struct Verifier {
    issuer: String,
    audience: String,
    jwks_uri: String,
    http: reqwest::Client,
    keys: RwLock<Option<(Instant, JwkSet)>>,
    /// When the last fetch of the JWKS failed.
    failed_at: Mutex<Option<Instant>>,
    /// Held by the one request fetching the JWKS; others wait and read its result.
    fetching: tokio::sync::Mutex<()>,
    seen_proofs: Mutex<SeenProofs>,
    api_base: Option<String>,
    resource_metadata: Option<ResourceMetadata>,
}

/// DPoP proof `jti`s by key, each until the proof would be too old anyway.
#[derive(Default)]
struct SeenProofs {
    until: HashMap<String, i64>,
    next_sweep: i64,
}

impl SeenProofs {
    /// Records `key`: `Ok(true)` the first time, `Ok(false)` for a replay, `Err` when
    /// the cache is full of live proofs.
    fn remember(&mut self, key: String, until: i64, now: i64) -> Result<bool, ()> {
        if now >= self.next_sweep || self.until.len() >= MAX_SEEN_PROOFS {
            self.until.retain(|_, until| *until > now);
            self.next_sweep = now + SWEEP_EVERY;
        }
        if self.until.get(&key).is_some_and(|seen_until| *seen_until > now) {
            return Ok(false);
        }
        if self.until.len() >= MAX_SEEN_PROOFS {
            return Err(());
        }
        self.until.insert(key, until);
        Ok(true)
    }
}

/// A verified access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub subject: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// Every claim, for what this helper does not interpret.
    pub claims: serde_json::Value,
}

impl AccessToken {
    /// Refuses with 403 `insufficient_scope` unless the token carries `scope`.
    ///
    /// # Errors
    /// [`Rejection`] when the scope is missing.
    pub fn require_scope(&self, scope: &str) -> Result<(), Rejection> {
        if self.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(Rejection::new(
                Scheme::Bearer,
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "the token lacks a needed scope",
            ))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    Dpop,
}

/// Why a request was refused: a 401 (or 403) with `WWW-Authenticate` (RFC 6750 §3,
/// RFC 9449 §7.1; RFC 9728 §5.1 for `resource_metadata`).
#[derive(Debug)]
pub struct Rejection {
    scheme: Scheme,
    status: StatusCode,
    error: &'static str,
    description: &'static str,
    /// The URL of the resource's metadata document, set by [`Verifier::verify`].
    resource_metadata: Option<String>,
}

impl Rejection {
    fn new(scheme: Scheme, status: StatusCode, error: &'static str, description: &'static str) -> Self {
        Self { scheme, status, error, description, resource_metadata: None }
    }

    fn invalid_token(scheme: Scheme, description: &'static str) -> Self {
        Self::new(scheme, StatusCode::UNAUTHORIZED, "invalid_token", description)
    }

    /// The OAuth `error` code.
    #[must_use]
    pub fn error(&self) -> &'static str {
        self.error
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let scheme = if self.scheme == Scheme::Dpop { "DPoP" } else { "Bearer" };
        let mut challenge =
            format!(r#"{scheme} error="{}", error_description="{}""#, self.error, self.description);
        // RFC 9728 §5.1: where a client learns which authorization server to ask.
        // A parsed URL holds no `"` or `\`, so it needs no escaping as a quoted-string.
        if let Some(url) = &self.resource_metadata {
            challenge.push_str(&format!(r#", resource_metadata="{url}""#));
        }
        let mut response = self.status.into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: serde_json::Value,
    exp: i64,
    client_id: Option<String>,
    scope: Option<String>,
    cnf: Option<Cnf>,
}

#[derive(Deserialize)]
struct Cnf {
    jkt: Option<String>,
    #[serde(rename = "x5t#S256")]
    x5t_s256: Option<String>,
}

/// The DER certificate the client presented on this request's TLS connection. The
/// API's TLS layer inserts it into the request's extensions (RFC 8705 §3); without
/// it, certificate-bound tokens are refused.
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Vec<u8>);

impl Verifier {
    /// A verifier for tokens of `issuer` meant for `audience`; keys come from
    /// `{issuer}/jwks` (Tessera's `jwks_uri`).
    ///
    /// # Panics
    /// Never in practice: only if no TLS backend can be set up.
    #[must_use]
    pub fn new(issuer: &str, audience: &str) -> Self {
        let issuer = issuer.trim_end_matches('/').to_owned();
        Self {
            jwks_uri: format!("{issuer}/jwks"),
            issuer,
            audience: audience.to_owned(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default(),
            keys: RwLock::new(None),
            failed_at: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            seen_proofs: Mutex::new(SeenProofs::default()),
            api_base: None,
            resource_metadata: None,
        }
    }

    /// The API's public base URL (`https://api.example.com`), which DPoP proofs name
    /// in `htu`. Without it the extractor refuses DPoP-bound tokens: the `Host` header
    /// is the client's to choose, so it cannot say which URL a proof must name.
    #[must_use]
    pub fn with_api_base(mut self, base: &str) -> Self {
        self.api_base = Some(base.trim_end_matches('/').to_owned());
        self
    }

    /// Describes the API as a protected resource (RFC 9728): every 401 then names the
    /// metadata document in `WWW-Authenticate`, and
    /// [`resource_metadata_router`](Self::resource_metadata_router) serves it.
    #[must_use]
    pub fn with_resource_metadata(mut self, metadata: ResourceMetadata) -> Self {
        self.resource_metadata = Some(metadata);
        self
    }

    /// The protected resource metadata document (RFC 9728 §2), when configured:
    /// `authorization_servers` is the issuer, and `dpop_signing_alg_values_supported`
    /// is listed only with a base URL, without which DPoP-bound tokens are refused.
    #[must_use]
    pub fn resource_metadata(&self) -> Option<serde_json::Value> {
        Some(self.resource_metadata.as_ref()?.document(&self.issuer, &self.dpop_algorithms()))
    }

    /// A router serving [`resource_metadata`](Self::resource_metadata) at its RFC 9728
    /// §3.1 path, as `application/json` cacheable for an hour; merge it into the API's.
    /// Without [`with_resource_metadata`](Self::with_resource_metadata) it has no routes.
    pub fn resource_metadata_router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let Some(metadata) = &self.resource_metadata else {
            return Router::new();
        };
        metadata.router(&metadata.document(&self.issuer, &self.dpop_algorithms()))
    }

    /// The DPoP proof algorithms accepted: none without a base URL to judge `htu` by.
    fn dpop_algorithms(&self) -> Vec<String> {
        if self.api_base.is_some() { dpop::algorithm_names() } else { Vec::new() }
    }

    /// Checks the request's access token (and DPoP proof) for `method` and the
    /// request's public `url`, and its certificate binding against the TLS client
    /// certificate the request came with.
    ///
    /// # Errors
    /// [`Rejection`]: 401 `invalid_token` or `invalid_dpop_proof`, naming the resource
    /// metadata when configured (RFC 9728 §5.1).
    pub async fn verify(
        &self,
        headers: &axum::http::HeaderMap,
        method: &str,
        url: &str,
        peer_certificate: Option<&PeerCertificate>,
    ) -> Result<AccessToken, Rejection> {
        self.check_request(headers, method, url, peer_certificate).await.map_err(|mut rejection| {
            rejection.resource_metadata = self.resource_metadata.as_ref().map(|m| m.url().to_owned());
            rejection
        })
    }

    async fn check_request(
        &self,
        headers: &axum::http::HeaderMap,
        method: &str,
        url: &str,
        peer_certificate: Option<&PeerCertificate>,
    ) -> Result<AccessToken, Rejection> {
        let authorization =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let (scheme, token) = match authorization.split_once(' ') {
            Some((s, t)) if s.eq_ignore_ascii_case("bearer") => (Scheme::Bearer, t.trim()),
            Some((s, t)) if s.eq_ignore_ascii_case("dpop") => (Scheme::Dpop, t.trim()),
            _ => return Err(Rejection::invalid_token(Scheme::Bearer, "no access token")),
        };
        let claims = self.check_token(scheme, token).await?;
        let now = SystemClock.now();
        // RFC 8705 §3: a certificate-bound token only with the certificate it names.
        if let Some(bound) = claims.cnf.as_ref().and_then(|cnf| cnf.x5t_s256.as_deref()) {
            let presented = peer_certificate
                .map(|PeerCertificate(der)| tessera_core::secret::b64url(tessera_core::secret::sha256(der)));
            if !presented.is_some_and(|thumbprint| tessera_core::secret::constant_time_eq(&thumbprint, bound))
            {
                return Err(Rejection::invalid_token(
                    scheme,
                    "the token is bound to another client certificate",
                ));
            }
        }
        let bound = claims.cnf.as_ref().and_then(|cnf| cnf.jkt.clone());
        match (scheme, bound) {
            (Scheme::Bearer, None) => {}
            (Scheme::Bearer, Some(_)) => {
                return Err(Rejection::invalid_token(scheme, "a DPoP-bound token needs the DPoP scheme"));
            }
            (Scheme::Dpop, None) => {
                return Err(Rejection::invalid_token(scheme, "the token is not DPoP-bound"));
            }
            (Scheme::Dpop, Some(jkt)) => self.check_proof(headers, method, url, token, &jkt, now)?,
        }
        let scopes = claims
            .scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let all =
            serde_json::json!({ "sub": claims.sub, "client_id": claims.client_id, "scope": claims.scope });
        Ok(AccessToken {
            subject: claims.sub,
            client_id: claims.client_id.unwrap_or_default(),
            scopes,
            claims: all,
        })
    }

    async fn check_token(&self, scheme: Scheme, token: &str) -> Result<Claims, Rejection> {
        let bad = |description| Rejection::invalid_token(scheme, description);
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("malformed token"))?;
        // RFC 9068 §4: only `at+jwt` tokens are access tokens (an ID token is not).
        if header.typ.as_deref().map(str::to_ascii_lowercase).as_deref() != Some("at+jwt") {
            return Err(bad("not an access token"));
        }
        let kid = header.kid.ok_or_else(|| bad("no kid"))?;
        let jwk = self.key(&kid).await.ok_or_else(|| bad("unknown signing key"))?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| bad("unusable signing key"))?;
        // Never trust the header's `alg` alone: it must be the key's.
        let alg = jwk.common.key_algorithm.and_then(|alg| jsonwebtoken::Algorithm::try_from(alg).ok());
        if alg != Some(header.alg) {
            return Err(bad("algorithm does not match the key"));
        }
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|_| bad("bad signature"))?
            .claims;
        let audience_matches = match &claims.aud {
            serde_json::Value::String(aud) => aud == &self.audience,
            serde_json::Value::Array(auds) => {
                auds.iter().any(|aud| aud.as_str() == Some(self.audience.as_str()))
            }
            _ => false,
        };
        if claims.iss != self.issuer || !audience_matches {
            return Err(bad("the token is for another issuer or audience"));
        }
        if claims.exp <= SystemClock.now() {
            return Err(bad("the token expired"));
        }
        Ok(claims)
    }

    fn check_proof(
        &self,
        headers: &axum::http::HeaderMap,
        method: &str,
        url: &str,
        token: &str,
        jkt: &str,
        now: i64,
    ) -> Result<(), Rejection> {
        let bad = |description| {
            Rejection::new(Scheme::Dpop, StatusCode::UNAUTHORIZED, "invalid_dpop_proof", description)
        };
        let mut proofs = headers.get_all("dpop").iter();
        let (Some(proof), None) = (proofs.next(), proofs.next()) else {
            return Err(bad("exactly one DPoP proof is needed"));
        };
        let jwt = proof.to_str().map_err(|_| bad("malformed DPoP proof"))?.to_owned();
        let proof = DpopProof { jwt, method: method.to_owned(), url: url.to_owned() };
        let checked =
            dpop::check(&proof, Some(token), now).map_err(|_| bad("the DPoP proof does not check out"))?;
        if checked.jkt != jkt {
            return Err(Rejection::invalid_token(
                Scheme::Dpop,
                "the proof is from another key than the token's",
            ));
        }
        // RFC 9449 §11.1: each proof once, remembered until it would be too old anyway.
        let mut seen = self.seen_proofs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match seen.remember(format!("{jkt}:{}", checked.jti), checked.replay_until(), now) {
            Ok(true) => Ok(()),
            Ok(false) => Err(bad("the DPoP proof was already used")),
            Err(()) => Err(bad("too many recent DPoP proofs; try again later")),
        }
    }

    /// The issuer's key `kid`, fetching the JWKS when stale or when the key is new.
    /// Concurrent misses share one fetch, and a failed fetch is not repeated for 30 s,
    /// so tokens naming unknown keys cannot make the API hammer the issuer.
    async fn key(&self, kid: &str) -> Option<jsonwebtoken::jwk::Jwk> {
        if let Some(decided) = self.cached_key(kid) {
            return decided;
        }
        let _turn = self.fetching.lock().await;
        if let Some(decided) = self.cached_key(kid) {
            return decided;
        }
        let Some(set) = self.fetch_keys().await else {
            *self.failed_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
            // A key already known (only stale) still verifies until the issuer answers.
            return self.keys.read().ok()?.as_ref()?.1.find(kid).cloned();
        };
        let found = set.find(kid).cloned();
        if let Ok(mut keys) = self.keys.write() {
            *keys = Some((Instant::now(), set));
        }
        *self.failed_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        found
    }

    /// The answer for `kid` when the cache decides it without a fetch.
    fn cached_key(&self, kid: &str) -> Option<Option<jsonwebtoken::jwk::Jwk>> {
        let keys = self.keys.read().ok()?;
        let found = keys.as_ref().and_then(|(_, set)| set.find(kid).cloned());
        if let Some((fetched, _)) = keys.as_ref() {
            if found.is_some() && fetched.elapsed() < KEYS_FRESH_FOR {
                return Some(found);
            }
            if found.is_none() && fetched.elapsed() < REFETCH_AFTER {
                return Some(None);
            }
        }
        let failed_at = *self.failed_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        failed_at.is_some_and(|at| at.elapsed() < REFETCH_AFTER).then_some(found)
    }

    /// The issuer's JWKS, read up to [`MAX_JWKS_BYTES`].
    async fn fetch_keys(&self) -> Option<JwkSet> {
        let mut response = self.http.get(&self.jwks_uri).send().await.ok()?.error_for_status().ok()?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.ok()? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                tracing::warn!(jwks_uri = %self.jwks_uri, "the issuer's JWKS is too large");
                return None;
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).ok()
    }
}

/// The axum extractor: a verified access token, or the [`Rejection`].
/// Needs `Arc<Verifier>` in the router's state. A DPoP proof's `htu` is checked
/// against the API's configured base URL ([`Verifier::with_api_base`]) plus the
/// request path.
pub struct Authenticated(pub AccessToken);

impl<S> FromRequestParts<S> for Authenticated
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Arc::<Verifier>::from_ref(state);
        // RFC 9449 §4.3 item 9: `htu` is checked against the URL the API is reached at,
        // which only its configuration knows; never the client-chosen `Host` header.
        // Without a base URL the empty `url` matches no proof.
        let url =
            verifier.api_base.as_ref().map(|base| format!("{base}{}", parts.uri.path())).unwrap_or_default();
        let certificate = parts.extensions.get::<PeerCertificate>();
        verifier.verify(&parts.headers, parts.method.as_str(), &url, certificate).await.map(Authenticated)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
    use axum::response::IntoResponse as _;

    use super::{MAX_SEEN_PROOFS, ResourceMetadata, SWEEP_EVERY, SeenProofs, Verifier};

    const METADATA_URL: &str = "https://api.example.com/.well-known/oauth-protected-resource/mcp";

    fn described_verifier() -> Verifier {
        let metadata = ResourceMetadata::new("https://api.example.com/mcp", &["mcp.tools"]).unwrap();
        Verifier::new("https://id.example.com/", "api1").with_resource_metadata(metadata)
    }

    /// The `WWW-Authenticate` value and status `verifier` answers `authorization` with.
    /// Only for requests refused before the JWKS is needed.
    async fn challenge(verifier: &Verifier, authorization: Option<&str>) -> (StatusCode, String) {
        let mut headers = HeaderMap::new();
        if let Some(authorization) = authorization {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(authorization).unwrap());
        }
        let rejection = verifier.verify(&headers, "GET", "", None).await.unwrap_err();
        let response = rejection.into_response();
        let challenge = response.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().to_owned();
        (response.status(), challenge)
    }

    #[tokio::test]
    async fn a_request_without_a_token_is_pointed_at_the_resource_metadata() {
        let (status, challenge) = challenge(&described_verifier(), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge,
            format!(
                r#"Bearer error="invalid_token", error_description="no access token", resource_metadata="{METADATA_URL}""#
            )
        );
    }

    #[tokio::test]
    async fn an_invalid_token_keeps_its_error_and_names_the_resource_metadata() {
        let (status, challenge) = challenge(&described_verifier(), Some("DPoP not-a-jwt")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge,
            format!(
                r#"DPoP error="invalid_token", error_description="malformed token", resource_metadata="{METADATA_URL}""#
            )
        );
    }

    #[tokio::test]
    async fn without_metadata_the_challenge_names_none() {
        let (_, challenge) = challenge(&Verifier::new("https://id.example.com", "api1"), None).await;
        assert_eq!(challenge, r#"Bearer error="invalid_token", error_description="no access token""#);
    }

    #[test]
    fn the_metadata_names_the_issuer_and_lists_dpop_only_when_dpop_can_be_checked() {
        let without_base = described_verifier().resource_metadata().unwrap();
        assert_eq!(without_base["authorization_servers"], serde_json::json!(["https://id.example.com"]));
        assert!(without_base.get("dpop_signing_alg_values_supported").is_none());
        let with_base =
            described_verifier().with_api_base("https://api.example.com").resource_metadata().unwrap();
        let algorithms = with_base["dpop_signing_alg_values_supported"].as_array().unwrap();
        assert!(algorithms.contains(&"ES256".into()), "{algorithms:?}");
        assert!(Verifier::new("https://id.example.com", "api1").resource_metadata().is_none());
    }

    #[test]
    fn a_proof_is_accepted_once_until_it_expires() {
        let mut seen = SeenProofs::default();
        assert_eq!(seen.remember("k:1".into(), 100, 10), Ok(true));
        assert_eq!(seen.remember("k:1".into(), 100, 50), Ok(false), "replay");
        assert_eq!(seen.remember("k:1".into(), 200, 100), Ok(true), "expired: too old to matter anyway");
    }

    #[test]
    fn the_replay_cache_is_bounded_and_sweeps_expired_proofs() {
        let mut seen = SeenProofs::default();
        for n in 0..MAX_SEEN_PROOFS {
            assert_eq!(seen.remember(format!("k:{n}"), 100, 0), Ok(true));
        }
        // Full of live proofs: a new one is refused, not let through unrecorded.
        assert_eq!(seen.remember("k:new".into(), 100, 1), Err(()));
        assert_eq!(seen.remember("k:0".into(), 100, 1), Ok(false), "replays are still caught");
        // Once they expire they are swept and room returns.
        assert_eq!(seen.remember("k:new".into(), 300, 100 + SWEEP_EVERY), Ok(true));
        assert_eq!(seen.until.len(), 1);
    }
}
