//! The BFF as an OpenID Connect relying party of any provider: discovery (OpenID
//! Connect Discovery 1.0 §4), the token endpoint with `client_secret_basic`
//! (RFC 6749 §2.3.1) or `private_key_jwt` (RFC 7523), DPoP proofs when asked
//! (RFC 9449), JWT verification against the provider's JWKS.

use std::sync::{Mutex, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::keys::SigningKey;

/// How the BFF authenticates at the token endpoint.
pub enum ClientAuth {
    /// `client_secret_basic` (RFC 6749 §2.3.1).
    Secret(String),
    /// `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9).
    Key(Box<SigningKey>),
}

/// The parts of the provider's metadata the BFF uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// RFC 9207 §3: the provider names itself in every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// Asymmetric algorithms only: `none` and the HMAC family are never accepted.
const ALLOWED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("provider unreachable: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(reason: impl Into<String>) -> OidcError {
    OidcError::Invalid(reason.into())
}

/// A token endpoint response (RFC 6749 §5.1).
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub expires_in: Option<i64>,
    /// `Bearer`, or `DPoP` when the token is bound to the proof's key (RFC 9449 §5).
    #[serde(default)]
    pub token_type: String,
}

impl TokenResponse {
    pub fn is_dpop(&self) -> bool {
        self.token_type.eq_ignore_ascii_case("dpop")
    }
}

pub struct Provider {
    pub metadata: Metadata,
    pub client_id: String,
    auth: ClientAuth,
    http: reqwest::Client,
    jwks: RwLock<JwkSet>,
    /// When the JWKS was last fetched: an unknown `kid` refetches at most every
    /// [`JWKS_REFETCH`] seconds, so forged tokens cannot make the BFF hammer the provider.
    jwks_fetched_at: Mutex<i64>,
    algorithms: Vec<Algorithm>,
    /// The token endpoint's last `DPoP-Nonce` (RFC 9449 §8).
    dpop_nonce: Mutex<Option<String>>,
}

const JWKS_REFETCH: i64 = 10;

impl Provider {
    /// Fetches `{issuer}/.well-known/openid-configuration` and the JWKS; the metadata's
    /// `issuer` must equal the configured one (Discovery §4.3). On failure `auth` is
    /// handed back, for another try.
    pub async fn discover(
        http: reqwest::Client,
        issuer: &str,
        client_id: &str,
        auth: ClientAuth,
        now: i64,
    ) -> Result<Self, (OidcError, ClientAuth)> {
        let (metadata, jwks, algorithms) = match Self::fetch(&http, issuer).await {
            Ok(found) => found,
            Err(error) => return Err((error, auth)),
        };
        Ok(Self {
            metadata,
            client_id: client_id.to_owned(),
            auth,
            http,
            jwks: RwLock::new(jwks),
            jwks_fetched_at: Mutex::new(now),
            algorithms,
            dpop_nonce: Mutex::new(None),
        })
    }

    async fn fetch(
        http: &reqwest::Client,
        issuer: &str,
    ) -> Result<(Metadata, JwkSet, Vec<Algorithm>), OidcError> {
        let url = format!("{issuer}/.well-known/openid-configuration");
        let metadata: Metadata = http.get(&url).send().await?.error_for_status()?.json().await?;
        if metadata.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(invalid(format!("discovery issuer {} is not {issuer}", metadata.issuer)));
        }
        let algorithms: Vec<Algorithm> = if metadata.id_token_signing_alg_values_supported.is_empty() {
            vec![Algorithm::RS256]
        } else {
            ALLOWED
                .iter()
                .copied()
                .filter(|alg| {
                    metadata.id_token_signing_alg_values_supported.iter().any(|a| a == &format!("{alg:?}"))
                })
                .collect()
        };
        let jwks: JwkSet = http.get(&metadata.jwks_uri).send().await?.error_for_status()?.json().await?;
        Ok((metadata, jwks, algorithms))
    }

    /// `Authorization: Basic` with both parts form-urlencoded first (RFC 6749 §2.3.1).
    fn basic(&self, secret: &str) -> String {
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", encode(&self.client_id), encode(secret));
        format!("Basic {}", STANDARD.encode(pair))
    }

    /// A token request with the client's authentication, and a DPoP proof of `dpop`
    /// when given. A `use_dpop_nonce` error is answered once with the nonce the
    /// provider sent (RFC 9449 §8); the nonce is kept for the next requests.
    pub async fn token(
        &self,
        form: &[(&str, &str)],
        dpop: Option<&SigningKey>,
        now: i64,
    ) -> Result<TokenResponse, OidcError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut fields: Vec<(&str, String)> = form.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
            let mut request = self.http.post(&self.metadata.token_endpoint);
            match &self.auth {
                ClientAuth::Secret(secret) => {
                    request = request.header(reqwest::header::AUTHORIZATION, self.basic(secret));
                }
                ClientAuth::Key(key) => {
                    let assertion = key
                        .client_assertion(&self.client_id, &self.metadata.token_endpoint, now)
                        .map_err(invalid)?;
                    fields.push(("client_id", self.client_id.clone()));
                    fields.push((
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                    ));
                    fields.push(("client_assertion", assertion));
                }
            }
            if let Some(key) = dpop {
                let nonce = self.dpop_nonce.lock().ok().and_then(|n| n.clone());
                let proof = key
                    .dpop_proof("POST", &self.metadata.token_endpoint, now, None, nonce.as_deref())
                    .map_err(invalid)?;
                request = request.header("DPoP", proof);
            }
            let response = request.form(&fields).send().await?;
            if let Some(nonce) = response.headers().get("dpop-nonce").and_then(|v| v.to_str().ok())
                && let Ok(mut kept) = self.dpop_nonce.lock()
            {
                *kept = Some(nonce.to_owned());
            }
            let status = response.status();
            if status.is_success() {
                return Ok(response.json().await?);
            }
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let error = body.get("error").and_then(Value::as_str).unwrap_or("unknown").to_owned();
            if error == "use_dpop_nonce" && dpop.is_some() && attempt == 1 {
                continue;
            }
            return Err(invalid(format!("token endpoint answered {status} ({error})")));
        }
    }

    /// Verifies a JWT's signature with the provider's key named by its `kid` (fetching
    /// the JWKS again, at most every ten seconds, when the key is unknown: the provider may have rotated),
    /// `iss`, `aud` = our client id, and `exp` against `now` (with 60 s leeway).
    pub async fn verify(&self, token: &str, now: i64, check_exp: bool) -> Result<Value, OidcError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| invalid(format!("malformed JWT: {e}")))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(invalid(format!("algorithm {:?} not allowed", header.alg)));
        }
        let key = match self.key(header.kid.as_deref()) {
            Some(key) => key,
            None => {
                {
                    let mut fetched =
                        self.jwks_fetched_at.lock().map_err(|_| invalid("JWKS lock poisoned"))?;
                    if now - *fetched < JWKS_REFETCH {
                        return Err(invalid("no provider key for the JWT's kid"));
                    }
                    *fetched = now;
                }
                let jwks: JwkSet =
                    self.http.get(&self.metadata.jwks_uri).send().await?.error_for_status()?.json().await?;
                if let Ok(mut cached) = self.jwks.write() {
                    *cached = jwks;
                }
                self.key(header.kid.as_deref()).ok_or_else(|| invalid("no provider key for the JWT's kid"))?
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[&self.metadata.issuer]);
        validation.set_audience(&[&self.client_id]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| invalid(format!("JWT rejected: {e}")))?;
        let claims = data.claims;
        if check_exp {
            let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(|| invalid("JWT has no exp"))?;
            if exp + 60 < now {
                return Err(invalid("JWT expired"));
            }
        }
        Ok(claims)
    }

    fn key(&self, kid: Option<&str>) -> Option<DecodingKey> {
        let jwks = self.jwks.read().ok()?;
        let jwk = match kid {
            Some(kid) => jwks.find(kid)?,
            None if jwks.keys.len() == 1 => jwks.keys.first()?,
            None => return None,
        };
        DecodingKey::from_jwk(jwk).ok()
    }
}
