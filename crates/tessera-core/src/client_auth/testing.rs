//! Builders for the authentication methods' unit tests: the narrow context the one
//! door (`authenticate`) builds, over the memory store and fixed keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;

use super::{Endpoint, JwksCache, JwksSource, MethodContext};
use crate::Timestamp;
use crate::model::{AuthMethod, Client, ClientCredential};
use crate::password::PasswordChecks;
use crate::random::Rng;
use crate::secret::b64url;
use crate::secret_checks::SecretChecks;
use crate::settings::ClientAuthSettings;
use crate::store::memory::MemoryStore;
use crate::tokens::{SigningAlgorithm, SigningKey, generate_pkcs8};

pub const ISSUER: &str = "https://issuer.example";
pub const TOKEN: &str = "https://issuer.example/token";
/// The token endpoint through the mTLS listener's alias (RFC 8705 §5).
pub const MTLS_TOKEN: &str = "https://mtls.issuer.example/token";
pub const NOW: Timestamp = 1_800_000_000;

/// Key sets served at `jwks_uri`s, by URI.
#[derive(Default)]
pub struct Served(pub Mutex<HashMap<String, Value>>);

#[async_trait]
impl JwksSource for Arc<Served> {
    async fn fetch(&self, uri: &str) -> Result<Value, String> {
        self.0.lock().unwrap().get(uri).cloned().ok_or_else(|| format!("{uri}: 404"))
    }
}

/// The parts a method may use.
pub struct Parts {
    pub store: MemoryStore,
    pub secret_checks: SecretChecks,
    password_checks: PasswordChecks,
    pub served: Arc<Served>,
    jwks: JwksCache,
    settings: ClientAuthSettings,
}

impl Parts {
    pub fn new() -> Self {
        let served = Arc::new(Served::default());
        Self {
            store: MemoryStore::default(),
            secret_checks: SecretChecks::default(),
            password_checks: PasswordChecks::default(),
            jwks: JwksCache::new(Arc::new(served.clone())),
            served,
            settings: ClientAuthSettings { clock_skew: 30, assertion_max_lifetime: 300 },
        }
    }

    /// The context of a request to `endpoint` at `now`.
    pub fn at<'a>(&'a self, endpoint: &'a str, now: Timestamp) -> MethodContext<'a> {
        MethodContext {
            now,
            endpoint: Endpoint { url: endpoint },
            issuer: ISSUER,
            token_endpoints: [TOKEN, MTLS_TOKEN],
            settings: &self.settings,
            secret_checks: &self.secret_checks,
            password_checks: &self.password_checks,
            jwks: &self.jwks,
            replay: &self.store,
        }
    }
}

/// A client registered for `methods` with `credentials`.
pub fn client(methods: &[AuthMethod], credentials: Vec<ClientCredential>) -> Client {
    Client {
        auth_methods: methods.to_vec(),
        credentials,
        ..crate::test_support::service_client("svc", &["api1.read"])
    }
}

/// An ES256 key of the client's, with `kid`.
pub fn client_key(kid: &str) -> SigningKey {
    let pkcs8 = generate_pkcs8(SigningAlgorithm::Es256, &Rng::default()).unwrap();
    SigningKey::from_pkcs8(kid, SigningAlgorithm::Es256, &pkcs8).unwrap()
}

/// A JWS of `claims` signed with `key`.
pub fn signed(key: &SigningKey, claims: &Value) -> String {
    let header = serde_json::json!({ "alg": "ES256", "typ": "JWT", "kid": key.kid() });
    let input = format!("{}.{}", b64url(header.to_string()), b64url(claims.to_string()));
    let signature = key.sign(input.as_bytes(), &Rng::default()).unwrap();
    format!("{input}.{}", b64url(signature))
}

/// Assertion claims of client `svc` for `aud`, live for a minute from [`NOW`].
pub fn assertion_claims(aud: Value, jti: &str) -> Value {
    serde_json::json!({ "iss": "svc", "sub": "svc", "aud": aud, "exp": NOW + 60, "iat": NOW, "jti": jti })
}
