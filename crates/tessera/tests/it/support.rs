//! `TestServer`: the real server on a loopback port with a temporary SQLite file (or
//! a fresh PostgreSQL schema) and a `MockClock` started at the real time.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use tessera_core::Provider;
use tessera_core::clock::MockClock;
use tessera_core::random::Rng;
use tessera_core::tokens::{SigningAlgorithm, SigningKey, generate_pkcs8};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Resources and clients every test server has; tests append more TOML.
pub const BASE_CONFIG: &str = r#"
[[api_scopes]]
name = "api1.read"
display_name = "Read API 1"
[[api_scopes]]
name = "api1.write"
display_name = "Write API 1"
[[api_scopes]]
name = "api2.read"
display_name = "Read API 2"

[[api_resources]]
name = "api1"
display_name = "API 1"
scopes = ["api1.read", "api1.write"]
secrets = [{ value = "api1-secret" }]

[[api_resources]]
name = "api2"
display_name = "API 2"
scopes = ["api2.read"]
secrets = [{ value = "api2-secret" }]

[[identity_resources]]
name = "openid"
[[identity_resources]]
name = "profile"
[[identity_resources]]
name = "email"

[[users]]
username = "alice"
password = "alice-password-1"
subject = "alice-sub"
claims = { name = "Alice Smith", email = "alice@example.com", email_verified = true }

[[users]]
username = "bob"
password = "bob-password-1"
subject = "bob-sub"
claims = { name = "Bob Jones" }

[[clients]]
client_id = "web"
client_name = "Web App"
allowed_grant_types = ["authorization_code"]
client_secrets = [{ value = "web-secret" }]
redirect_uris = ["https://web.example/cb", "https://web.example/other-cb"]
post_logout_redirect_uris = ["https://web.example/signed-out"]
allowed_scopes = ["openid", "profile", "email", "api1.read"]
allow_offline_access = true

[[clients]]
client_id = "native"
client_name = "Native App"
allowed_grant_types = ["authorization_code"]
require_client_secret = false
redirect_uris = ["http://127.0.0.1/callback", "com.example.app:/callback"]
allowed_scopes = ["openid", "profile", "api1.read"]
allow_offline_access = true

[[clients]]
client_id = "trusted"
client_name = "First-party App"
allowed_grant_types = ["authorization_code"]
client_secrets = [{ value = "trusted-secret" }]
redirect_uris = ["https://trusted.example/cb"]
allowed_scopes = ["openid", "profile", "api1.read"]
allow_offline_access = true
require_consent = false

[[clients]]
client_id = "pushy"
client_name = "PAR-only App"
allowed_grant_types = ["authorization_code"]
client_secrets = [{ value = "pushy-secret" }]
redirect_uris = ["https://pushy.example/cb"]
allowed_scopes = ["openid", "api1.read"]
require_pushed_authorization = true
require_consent = false

[[clients]]
client_id = "svc"
allowed_grant_types = ["client_credentials"]
client_secrets = [{ value = "svc-secret" }]
allowed_scopes = ["api1.read", "api1.write", "api2.read"]

[[clients]]
client_id = "other"
allowed_grant_types = ["client_credentials"]
client_secrets = [{ value = "other-secret" }]
allowed_scopes = ["api1.read"]

[[clients]]
client_id = "ref"
allowed_grant_types = ["client_credentials"]
client_secrets = [{ value = "ref-secret" }]
allowed_scopes = ["api1.read"]
access_token_format = "reference"

[[clients]]
client_id = "tv"
allowed_grant_types = ["urn:ietf:params:oauth:grant-type:device_code"]
client_secrets = [{ value = "tv-secret" }]
allowed_scopes = ["api1.read"]
"#;

/// A running server.
pub struct TestServer {
    /// Where this instance listens.
    pub base: String,
    /// The configured issuer (the base URL unless several instances share one).
    pub issuer: String,
    pub http: reqwest::Client,
    pub clock: Arc<MockClock>,
    pub provider: Arc<Provider>,
    pub config_path: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    dir: PathBuf,
}

/// The PostgreSQL server of the test run (`TESSERA_TEST_POSTGRES`); `None` skips.
pub fn postgres_url() -> Option<String> {
    let url = std::env::var("TESSERA_TEST_POSTGRES").ok();
    if url.is_none() {
        eprintln!("TESSERA_TEST_POSTGRES is not set: skipping the PostgreSQL run");
    }
    url
}

/// A fresh temporary directory.
pub fn temp_dir(label: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tessera-it-{}-{label}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl TestServer {
    /// The base configuration on SQLite.
    pub async fn spawn() -> Self {
        Self::spawn_with("").await
    }

    /// The base configuration plus `extra` TOML, on SQLite.
    pub async fn spawn_with(extra: &str) -> Self {
        Self::spawn_with_env(extra, &[]).await
    }

    /// The base configuration plus `extra` TOML and `TESSERA__…` overrides, on SQLite.
    pub async fn spawn_with_env(extra: &str, env: &[(&str, &str)]) -> Self {
        let dir = temp_dir("server");
        let url = format!("sqlite://{}", dir.join("tessera.db").display());
        Self::spawn_configured(&url, extra, env, dir, None).await
    }

    /// With a TLS listener too: `extra` names its port as `{tls_port}`, and may refer
    /// to files `prepare` writes into the server's directory (passed to it).
    pub async fn spawn_with_tls(extra: &str, prepare: impl FnOnce(&std::path::Path)) -> Self {
        Self::spawn_with_tls_env(extra, prepare, &[]).await
    }

    /// [`Self::spawn_with_tls`] with `TESSERA__…` overrides.
    pub async fn spawn_with_tls_env(
        extra: &str,
        prepare: impl FnOnce(&std::path::Path),
        env: &[(&str, &str)],
    ) -> Self {
        let dir = temp_dir("server");
        prepare(&dir);
        let url = format!("sqlite://{}", dir.join("tessera.db").display());
        let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let extra = extra.replace("{tls_port}", &tls.local_addr().unwrap().port().to_string());
        Self::spawn_configured(&url, &extra, env, dir, Some(tls)).await
    }

    /// One of several instances behind a load balancer: they share `issuer`
    /// (the public URL), each listening on its own port.
    pub async fn spawn_instance(issuer: &str, storage_url: &str, dir: PathBuf) -> Self {
        Self::spawn_configured(storage_url, "", &[("TESSERA__ISSUER", issuer)], dir, None).await
    }

    async fn spawn_configured(
        storage_url: &str,
        extra: &str,
        env: &[(&str, &str)],
        dir: PathBuf,
        tls: Option<TcpListener>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let text = format!(
            "issuer = \"{base}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n[storage]\nurl = \"{storage_url}\"\n\
             [signing]\nencryption_key = \"test-encryption-key\"\n{BASE_CONFIG}\n{extra}"
        );
        let config_path = dir.join("tessera.toml");
        std::fs::write(&config_path, &text).unwrap();
        // `{port}` in an override is this instance's port (an issuer on `localhost`).
        let env: Vec<(String, String)> =
            env.iter().map(|(k, v)| ((*k).to_owned(), v.replace("{port}", &port.to_string()))).collect();
        let config = tessera_config::load_str(&text, &config_path.display().to_string(), &dir, &env)
            .unwrap_or_else(|errors| panic!("test config invalid:\n{errors}"));
        let clock = Arc::new(MockClock::starting_now());
        let provider = tessera::server::prepare(&config, clock.clone()).await.unwrap();
        let (shutdown, stop) = oneshot::channel::<()>();
        let limits = tessera::server::connection_limits(&config);
        // `[admin] listen` in `extra`: bound here, on the port it names.
        let admin = match config.server.admin_listen {
            Some(address) => Some(TcpListener::bind(address).await.unwrap()),
            None => None,
        };
        let listeners = tessera::server::Listeners { http: listener, tls, admin, limits };
        let tls = tessera::server::tls_setup(&config).unwrap();
        let stopped = async move {
            let _ = stop.await;
        };
        let task = tokio::spawn(tessera::server::serve(provider.clone(), tls, listeners, stopped));
        let task = tokio::spawn(async move {
            task.await.unwrap().unwrap();
        });
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let issuer = config.settings.issuer.clone();
        Self {
            base,
            issuer,
            http,
            clock,
            provider,
            config_path,
            shutdown: Some(shutdown),
            task: Some(task),
            dir,
        }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The token endpoint URL, typed for the oauth2 crate.
    pub fn token_url(&self) -> oauth2::TokenUrl {
        oauth2::TokenUrl::new(self.url("/token")).unwrap()
    }

    /// GETs `path` and returns its JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http.get(self.url(path)).send().await.unwrap().json().await.unwrap()
    }

    /// POSTs a form, with Basic credentials when `basic` is given.
    pub async fn post_form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.http.post(self.url(path)).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        request.send().await.unwrap()
    }

    /// A client-credentials token for `svc`, as the raw response JSON.
    pub async fn svc_token(&self, extra: &[(&str, &str)]) -> Value {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        let response = self.post_form("/token", Some(("svc", "svc-secret")), &form).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Verifies an access token against the published JWKS, as an API would, and
    /// returns its claims. Checks `typ`, `alg`, signature, `iss` and `exp` (by the
    /// server's clock).
    pub async fn verify_jwt(&self, token: &str) -> Value {
        let jwks: jsonwebtoken::jwk::JwkSet =
            self.http.get(self.url("/jwks")).send().await.unwrap().json().await.unwrap();
        verify_with(&jwks, token, &self.issuer, tessera_core::Clock::now(self.clock.as_ref()))
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        self.shutdown_and_wait().await;
    }

    async fn shutdown_and_wait(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Verifies `token` with the keys of `jwks`, as any API would.
pub fn verify_with(jwks: &jsonwebtoken::jwk::JwkSet, token: &str, issuer: &str, now: i64) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 §2.1 typ");
    let kid = header.kid.expect("kid on every token");
    let jwk = jwks.find(&kid).unwrap_or_else(|| panic!("kid {kid} not in the JWKS"));
    // Never take the algorithm from the token alone: it must be the key's.
    let key_alg = jwk.common.key_algorithm.expect("alg on every published key");
    assert_eq!(format!("{key_alg:?}"), format!("{:?}", header.alg));
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_issuer(&[issuer]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation).unwrap().claims;
    assert!(claims["exp"].as_i64().unwrap() > now, "token expired");
    claims
}

/// An ES256 key pair for a client: PKCS#8 for signing and the public JWK.
pub struct ClientKey {
    pub pkcs8: Vec<u8>,
    pub jwk: Value,
}

impl ClientKey {
    pub fn generate(kid: &str) -> Self {
        let pkcs8 = generate_pkcs8(SigningAlgorithm::Es256, &Rng::default()).unwrap();
        let mut jwk = SigningKey::from_pkcs8(kid, SigningAlgorithm::Es256, &pkcs8).unwrap().public_jwk();
        jwk.as_object_mut().unwrap().remove("use");
        Self { pkcs8, jwk }
    }

    /// The public JWK as a TOML inline table.
    pub fn toml_jwk(&self) -> String {
        let fields: Vec<String> =
            self.jwk.as_object().unwrap().iter().map(|(name, value)| format!("{name} = {value}")).collect();
        format!("{{ {} }}", fields.join(", "))
    }

    /// A client assertion (RFC 7523 §3) signed with this key.
    pub fn assertion(&self, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = self.jwk["kid"].as_str().map(str::to_owned);
        let key = jsonwebtoken::EncodingKey::from_ec_der(&self.pkcs8);
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }
}

/// The `error` of an OAuth error response, with its status.
pub async fn oauth_error(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap_or_default().to_owned())
}

impl TestServer {
    /// The base configuration plus `extra` TOML on the store at `storage_url` (a
    /// PostgreSQL test cluster or a proxy in front of one).
    pub async fn spawn_on_store(storage_url: &str, extra: &str) -> Self {
        Self::spawn_configured(storage_url, extra, &[], temp_dir("store"), None).await
    }

    /// As [`Self::spawn_on_store`], with `TESSERA__…` overrides.
    pub async fn spawn_on_store_with_env(storage_url: &str, extra: &str, env: &[(&str, &str)]) -> Self {
        Self::spawn_configured(storage_url, extra, env, temp_dir("store"), None).await
    }

    /// The base configuration plus `extra` TOML on the store at `storage_url`, which
    /// outlives the server (restart on the same store with another configuration), as
    /// `issuer` (so tokens of an earlier start stay valid JWTs).
    pub async fn spawn_on_store_as(issuer: &str, storage_url: &str, extra: &str) -> Self {
        Self::spawn_configured(storage_url, extra, &[("TESSERA__ISSUER", issuer)], temp_dir("server"), None)
            .await
    }
}
