//! `tessera bff`: a backend-for-frontend for single-page apps (issue 17).
//!
//! It sits on the SPA's own origin, runs the OpenID Connect code flow (PKCE S256,
//! confidential client) with any provider found through discovery, keeps the tokens
//! in a server-side session, and proxies API calls with the token attached. The
//! browser holds only the `__Host-bff` cookie: an opaque random id, stored hashed.
//! Nothing here knows Tessera; it speaks only discovery, the code flow, refresh,
//! RP-initiated logout and back-channel logout.

mod cache;
pub mod config;
pub mod keys;
pub mod oidc;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{info, warn};

pub use config::{Api, BffConfig, TokenMode};
use keys::SigningKey;
use store::{PendingLogin, Session, Store};

/// Seconds since the epoch; injectable so tests can move time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(clippy::disallowed_methods, reason = "the BFF's own clock: it does not depend on tessera-core")]
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

/// The session cookie. `__Host-` (RFC 6265bis §4.1.3.2): Secure, Path=/, no Domain,
/// so a sibling subdomain cannot plant or overwrite it.
pub const COOKIE: &str = "__Host-bff";
/// Binds a pending login to the browser that started it (login CSRF).
const STATE_COOKIE: &str = "__Host-bff-state";
const LOGIN_TTL: i64 = 600;
/// At most this many logins wait for their callback (see [`Store::purge`]).
const MAX_PENDING_LOGINS: i64 = 10_000;
/// How long one instance may hold a session's refresh before others may try.
const REFRESH_LEASE: i64 = 30;
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("storage: {0}")]
    Store(#[from] sqlx::Error),
    #[error("discovery: {0}")]
    Discovery(#[from] oidc::OidcError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("bff.client_key {0}")]
    ClientKey(String),
}

struct Bff {
    config: BffConfig,
    provider: oidc::Provider,
    store: Store,
    sessions: cache::SessionCache,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    /// One refresh at a time per session within this instance; the store's lease
    /// does the same across instances.
    refreshing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    client_token: tokio::sync::Mutex<Option<(Credential, i64)>>,
    /// With `dpop = true`: this instance's key for its client-credentials tokens.
    client_dpop: Option<Arc<SigningKey>>,
    /// Each API's last `DPoP-Nonce` (RFC 9449 §9), by index.
    api_nonces: Mutex<HashMap<usize, String>>,
}

/// An access token and, when it is DPoP-bound, the key its proofs are signed with.
#[derive(Clone)]
struct Credential {
    token: String,
    dpop: Option<Arc<SigningKey>>,
}

/// Connects the store, discovers the provider, and returns the BFF's router.
pub async fn router(config: BffConfig, clock: Arc<dyn Clock>) -> Result<Router, StartError> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(oidc::OidcError::Http)?;
    let store = Store::connect(&config.storage).await?;
    let auth = match &config.client_key {
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|e| StartError::ClientKey(format!("{}: {e}", path.display())))?;
            let key = SigningKey::from_pem(&pem)
                .map_err(|e| StartError::ClientKey(format!("{}: {e}", path.display())))?;
            let jwk = serde_json::to_string(key.public_jwk()).unwrap_or_default();
            info!(public_jwk = %jwk, "private_key_jwt: register this public key for the client");
            oidc::ClientAuth::Key(Box::new(key))
        }
        None => oidc::ClientAuth::Secret(config.client_secret.clone().unwrap_or_default()),
    };
    let provider = discover(&http, &config, auth, clock.as_ref()).await?;
    let client_dpop = if config.dpop {
        Some(Arc::new(SigningKey::generate_es256().map_err(StartError::ClientKey)?.0))
    } else {
        None
    };
    let apis = config.apis.clone();
    let state = Arc::new(Bff {
        config,
        provider,
        store,
        sessions: cache::SessionCache::default(),
        clock,
        http,
        refreshing: Mutex::new(HashMap::new()),
        client_token: tokio::sync::Mutex::new(None),
        client_dpop,
        api_nonces: Mutex::new(HashMap::new()),
    });
    let mut router = Router::new()
        .route("/bff/login", get(login))
        .route("/bff/callback", get(callback))
        .route("/bff/user", get(user))
        .route("/bff/logout", get(logout))
        .route("/bff/backchannel", post(backchannel));
    for (index, api) in apis.iter().enumerate() {
        let handler =
            move |state: State<Arc<Bff>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                proxy(state, index, method, uri, headers, body)
            };
        router =
            router.route(&api.path, any(handler)).route(&format!("{}/{{*rest}}", api.path), any(handler));
    }
    Ok(router.fallback(get(static_file)).with_state(state))
}

/// Discovers the provider, waiting for it while it cannot be reached (a BFF started
/// beside its provider may come up first): one try a second at first, then every 30
/// s. Metadata that is wrong (another `issuer`, say) ends the start at once.
async fn discover(
    http: &reqwest::Client,
    config: &BffConfig,
    mut auth: oidc::ClientAuth,
    clock: &dyn Clock,
) -> Result<oidc::Provider, StartError> {
    let mut pause = std::time::Duration::from_secs(1);
    loop {
        match oidc::Provider::discover(http.clone(), &config.issuer, &config.client_id, auth, clock.now())
            .await
        {
            Ok(provider) => return Ok(provider),
            Err((oidc::OidcError::Http(error), returned)) => {
                warn!(%error, issuer = %config.issuer, retry_in = ?pause, "the provider cannot be reached yet");
                auth = returned;
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(30));
            }
            Err((error, _)) => return Err(error.into()),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    config: BffConfig,
    clock: Arc<dyn Clock>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let app = router(config, clock).await?;
    info!(address = %listener.local_addr()?, "bff listening");
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// A path on this origin: one leading `/`, not `//` or `/\` (which browsers read as
/// another host), no backslash or control character.
pub fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
}

/// 256 random bits, base64url. Empty when the OS has no entropy source: callers
/// refuse the request then rather than hand out a guessable id.
fn random() -> String {
    let mut bytes = [0_u8; 32];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return String::new();
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn set_cookie(name: &str, value: &str, max_age: i64) -> HeaderValue {
    // Secure even on http://localhost and http://127.0.0.1: browsers count those as secure.
    let text = format!("{name}={value}; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age={max_age}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn status(code: StatusCode, error: &str) -> Response {
    (code, axum::Json(json!({ "error": error }))).into_response()
}

fn server_error(what: &str, error: &dyn std::fmt::Display) -> Response {
    warn!(%error, "{what}");
    status(StatusCode::INTERNAL_SERVER_ERROR, "server_error")
}

/// The custom header a cross-site form or simple request cannot send.
fn csrf_ok(headers: &HeaderMap) -> bool {
    headers.get("x-csrf").is_some_and(|v| v == "1")
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(rename = "returnUrl")]
    return_url: Option<String>,
}

async fn login(State(bff): State<Arc<Bff>>, Query(query): Query<LoginQuery>) -> Response {
    let return_url = query.return_url.unwrap_or_else(|| "/".to_owned());
    if !is_local_path(&return_url) {
        info!("login refused: returnUrl is not a local path");
        return status(StatusCode::BAD_REQUEST, "invalid_return_url");
    }
    let (state, verifier, nonce) = (random(), random(), random());
    if state.is_empty() || verifier.is_empty() || nonce.is_empty() {
        return status(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    }
    let now = bff.clock.now();
    let pending = PendingLogin {
        state: state.clone(),
        verifier: verifier.clone(),
        nonce: nonce.clone(),
        return_url,
        expires_at: now + LOGIN_TTL,
    };
    if let Err(error) = bff.store.purge(now, MAX_PENDING_LOGINS).await {
        warn!(%error, "purging expired logins failed");
    }
    if let Err(error) = bff.store.insert_login(&pending).await {
        return server_error("storing a login failed", &error);
    }
    let challenge =
        URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()));
    let scope = bff.config.scopes.join(" ");
    let redirect_uri = format!("{}/bff/callback", bff.config.public_url);
    let mut url = match url::Url::parse(&bff.provider.metadata.authorization_endpoint) {
        Ok(url) => url,
        Err(error) => return server_error("bad authorization_endpoint", &error),
    };
    {
        let mut pairs = url.query_pairs_mut();
        pairs
            .append_pair("response_type", "code")
            .append_pair("client_id", &bff.config.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", &scope)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        // OpenID Connect Core §11: offline_access is honoured only with prompt=consent.
        if bff.config.scopes.iter().any(|s| s == "offline_access") {
            pairs.append_pair("prompt", "consent");
        }
    }
    let mut response = Redirect::to(url.as_str()).into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(STATE_COOKIE, &state, LOGIN_TTL));
    response
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    /// RFC 9207: the issuer of the response.
    iss: Option<String>,
}

async fn callback(
    State(bff): State<Arc<Bff>>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(state) = query.state else {
        info!("callback refused: no state");
        return status(StatusCode::BAD_REQUEST, "invalid_request");
    };
    // The state must be the one this browser's login set (login CSRF), and known.
    if cookie(&headers, STATE_COOKIE).as_deref() != Some(state.as_str()) {
        info!("callback refused: state does not match this browser's login");
        return status(StatusCode::BAD_REQUEST, "invalid_state");
    }
    let now = bff.clock.now();
    let pending = match bff.store.take_login(&state).await {
        Ok(Some(pending)) if pending.expires_at >= now => pending,
        Ok(_) => {
            info!("callback refused: unknown or expired state");
            return status(StatusCode::BAD_REQUEST, "invalid_state");
        }
        Err(error) => return server_error("reading a login failed", &error),
    };
    // RFC 9207 §2.4: a response that names another issuer (a mix-up), or none when
    // the provider says it always names itself, is refused.
    let metadata = &bff.provider.metadata;
    let issuer_ok = match &query.iss {
        Some(iss) => *iss == metadata.issuer,
        None => !metadata.authorization_response_iss_parameter_supported,
    };
    if !issuer_ok {
        info!("callback refused: the response's iss is not the provider's");
        return status(StatusCode::BAD_REQUEST, "invalid_issuer");
    }
    if let Some(error) = query.error {
        info!(%error, "the provider returned an error");
        return status(StatusCode::BAD_REQUEST, "login_failed");
    }
    let Some(code) = query.code else {
        return status(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let redirect_uri = format!("{}/bff/callback", bff.config.public_url);
    // With `dpop = true`, a key for this session alone, kept with it (RFC 9449 §5).
    let dpop = if bff.config.dpop {
        match SigningKey::generate_es256() {
            Ok((key, pkcs8)) => Some((key, URL_SAFE_NO_PAD.encode(pkcs8))),
            Err(error) => return server_error("generating a DPoP key failed", &error),
        }
    } else {
        None
    };
    let tokens = match bff
        .provider
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &redirect_uri),
                ("code_verifier", &pending.verifier),
            ],
            dpop.as_ref().map(|(key, _)| key),
            now,
        )
        .await
    {
        Ok(tokens) => tokens,
        Err(error) => {
            warn!(%error, "code exchange failed");
            return status(StatusCode::BAD_GATEWAY, "login_failed");
        }
    };
    let token_is_dpop = tokens.is_dpop();
    let Some(id_token) = tokens.id_token else {
        warn!("token response without id_token");
        return status(StatusCode::BAD_GATEWAY, "login_failed");
    };
    let claims = match bff.provider.verify(&id_token, now, true).await {
        Ok(claims) => claims,
        Err(error) => {
            warn!(%error, "ID token rejected");
            return status(StatusCode::BAD_GATEWAY, "login_failed");
        }
    };
    if claims.get("nonce").and_then(Value::as_str) != Some(pending.nonce.as_str()) {
        warn!("ID token rejected: nonce mismatch");
        return status(StatusCode::BAD_GATEWAY, "login_failed");
    }
    let Some(sub) = claims.get("sub").and_then(Value::as_str).map(str::to_owned) else {
        warn!("ID token rejected: no sub");
        return status(StatusCode::BAD_GATEWAY, "login_failed");
    };
    let id = random();
    if id.is_empty() {
        return status(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    }
    let sid = claims.get("sid").and_then(Value::as_str).map_or_else(random, str::to_owned);
    let lifetime = tokens.expires_in.unwrap_or(300).max(1);
    let dpop_key = match dpop {
        Some((_, stored)) if token_is_dpop => Some(stored),
        Some(_) => {
            warn!("dpop = true but the provider issued a Bearer token: the session uses Bearer");
            None
        }
        None => None,
    };
    let session = Session {
        id_hash: sha256(&id),
        sid,
        sub,
        claims: claims.to_string(),
        id_token,
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        dpop_key,
        access_issued_at: now,
        access_expires_at: now + lifetime,
        created_at: now,
        last_seen: now,
        expires_at: now + bff.config.session_lifetime,
    };
    if let Err(error) = bff.store.insert_session(&session).await {
        return server_error("storing a session failed", &error);
    }
    info!("signed in");
    let mut response = Redirect::to(&pending.return_url).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, set_cookie(COOKIE, &id, bff.config.session_lifetime));
    headers.append(header::SET_COOKIE, set_cookie(STATE_COOKIE, "", 0));
    response
}

/// The live session the request's cookie names, after the absolute and idle limits;
/// slides the idle timeout.
async fn current_session(bff: &Bff, headers: &HeaderMap) -> Result<Option<Session>, Response> {
    let Some(id) = cookie(headers, COOKIE) else { return Ok(None) };
    let hash = sha256(&id);
    let mut session = match bff.sessions.get(&hash) {
        Some(session) => session,
        None => match bff.store.session(&hash).await {
            Ok(Some(session)) => {
                bff.sessions.put(session.clone());
                session
            }
            Ok(None) => return Ok(None),
            Err(error) => return Err(server_error("reading a session failed", &error)),
        },
    };
    let now = bff.clock.now();
    if now >= session.expires_at || now >= session.last_seen + bff.config.session_idle {
        info!("session ended: lifetime or idle timeout");
        bff.sessions.remove(&hash);
        if let Err(error) = bff.store.delete_session(&hash).await {
            warn!(%error, "deleting an expired session failed");
        }
        return Ok(None);
    }
    // One write per session a few times per idle period, not one per request.
    if now - session.last_seen >= (bff.config.session_idle / 60).max(1) {
        match bff.store.touch(&hash, now).await {
            Ok(()) => {
                session.last_seen = now;
                bff.sessions.put(session.clone());
            }
            Err(error) => warn!(%error, "sliding a session failed"),
        }
    }
    Ok(Some(session))
}

async fn user(State(bff): State<Arc<Bff>>, headers: HeaderMap) -> Response {
    if !csrf_ok(&headers) {
        info!("/bff/user refused: no X-CSRF: 1");
        return status(StatusCode::UNAUTHORIZED, "csrf_header_required");
    }
    let session = match current_session(&bff, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return status(StatusCode::UNAUTHORIZED, "no_session"),
        Err(response) => return response,
    };
    let claims: Value = serde_json::from_str(&session.claims).unwrap_or(Value::Null);
    let mut out = Vec::new();
    if let Value::Object(map) = claims {
        for (name, value) in map {
            match value {
                Value::Array(values) => {
                    out.extend(values.into_iter().map(|v| json!({"type": name, "value": v})))
                }
                value => out.push(json!({"type": name, "value": value})),
            }
        }
    }
    let now = bff.clock.now();
    let ends = session.expires_at.min(session.last_seen.max(now) + bff.config.session_idle);
    let sid = url::form_urlencoded::byte_serialize(session.sid.as_bytes()).collect::<String>();
    out.push(json!({"type": "bff:logout_url", "value": format!("/bff/logout?sid={sid}")}));
    out.push(json!({"type": "bff:session_expires_in", "value": ends - now}));
    let mut response = axum::Json(Value::Array(out)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
struct LogoutQuery {
    sid: Option<String>,
}

async fn logout(
    State(bff): State<Arc<Bff>>,
    headers: HeaderMap,
    Query(query): Query<LogoutQuery>,
) -> Response {
    let session = match current_session(&bff, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let local = format!("{}{}", bff.config.public_url, bff.config.post_logout_redirect);
    let Some(session) = session else {
        // Nobody to sign out: back to the app.
        return Redirect::to(&local).into_response();
    };
    // The sid proves the request came from the app (it read /bff/user), not from a
    // cross-site link that would sign the user out.
    if query.sid.as_deref() != Some(session.sid.as_str()) {
        info!("logout refused: missing or wrong sid");
        return status(StatusCode::BAD_REQUEST, "invalid_sid");
    }
    bff.sessions.remove(&session.id_hash);
    if let Err(error) = bff.store.delete_session(&session.id_hash).await {
        return server_error("deleting a session failed", &error);
    }
    info!("signed out");
    let target = match &bff.provider.metadata.end_session_endpoint {
        Some(endpoint) => match url::Url::parse(endpoint) {
            Ok(mut url) => {
                url.query_pairs_mut()
                    .append_pair("id_token_hint", &session.id_token)
                    .append_pair("client_id", &bff.config.client_id)
                    .append_pair("post_logout_redirect_uri", &local);
                url.to_string()
            }
            Err(_) => local,
        },
        None => local,
    };
    let mut response = Redirect::to(&target).into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(COOKIE, "", 0));
    response
}

#[derive(Deserialize)]
struct BackchannelForm {
    logout_token: Option<String>,
}

/// OpenID Connect Back-Channel Logout 1.0 §2.6: 200 when the sessions ended, 400 with
/// `invalid_request` otherwise.
async fn backchannel(State(bff): State<Arc<Bff>>, axum::Form(form): axum::Form<BackchannelForm>) -> Response {
    let mut response = match backchannel_inner(&bff, form.logout_token).await {
        Ok(ended) => {
            info!(ended, "back-channel logout");
            StatusCode::OK.into_response()
        }
        Err(reason) => {
            info!(%reason, "back-channel logout refused");
            status(StatusCode::BAD_REQUEST, "invalid_request")
        }
    };
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn backchannel_inner(bff: &Bff, token: Option<String>) -> Result<u64, String> {
    let token = token.ok_or("no logout_token")?;
    let now = bff.clock.now();
    let claims = bff.provider.verify(&token, now, false).await.map_err(|e| e.to_string())?;
    let events = claims.get("events").and_then(Value::as_object).ok_or("no events claim")?;
    if !events.contains_key(BACKCHANNEL_EVENT) {
        return Err("events claim lacks the back-channel logout event".to_owned());
    }
    if claims.get("nonce").is_some() {
        return Err("a logout token must not carry a nonce".to_owned());
    }
    let iat = claims.get("iat").and_then(Value::as_i64).ok_or("no iat")?;
    if iat > now + 60 || iat < now - 600 {
        return Err("iat too far from now".to_owned());
    }
    if let Some(exp) = claims.get("exp").and_then(Value::as_i64)
        && exp + 60 < now
    {
        return Err("logout token expired".to_owned());
    }
    let jti = claims.get("jti").and_then(Value::as_str).ok_or("no jti")?;
    let sid = claims.get("sid").and_then(Value::as_str);
    let sub = claims.get("sub").and_then(Value::as_str);
    if sid.is_none() && sub.is_none() {
        return Err("neither sid nor sub".to_owned());
    }
    if !bff.store.remember_jti(jti, now, now + 3600).await.map_err(|e| e.to_string())? {
        return Err("jti replayed".to_owned());
    }
    bff.sessions.remove_matching(sid, sub);
    bff.store.delete_matching(sid, sub).await.map_err(|e| e.to_string())
}

/// The session's access token, refreshed first when less than a quarter of its
/// lifetime (at most 60 s) remains. One refresh per session at a time: a lock per
/// session in this instance, a lease in the store across instances; the others wait
/// and use the refreshed token.
async fn user_token(bff: &Bff, session: Session) -> Result<Credential, Response> {
    if !needs_refresh(&session, bff.clock.now()) {
        return credential(session).map_err(unreadable_key);
    }
    let lock = {
        let mut map =
            bff.refreshing.lock().map_err(|_| status(StatusCode::INTERNAL_SERVER_ERROR, "server_error"))?;
        map.entry(session.id_hash.clone()).or_default().clone()
    };
    let _guard = lock.lock().await;
    for _ in 0..100 {
        let now = bff.clock.now();
        let current = match bff.store.session(&session.id_hash).await {
            Ok(Some(current)) => current,
            Ok(None) => return Err(status(StatusCode::UNAUTHORIZED, "no_session")),
            Err(error) => return Err(server_error("reading a session failed", &error)),
        };
        if !needs_refresh(&current, now) {
            return credential(current).map_err(unreadable_key);
        }
        let Some(refresh_token) = current.refresh_token.clone() else {
            if current.access_expires_at > now {
                return credential(current).map_err(unreadable_key);
            }
            info!("access token expired and no refresh token: session ended");
            bff.sessions.remove(&current.id_hash);
            let _ = bff.store.delete_session(&current.id_hash).await;
            return Err(status(StatusCode::UNAUTHORIZED, "no_session"));
        };
        match bff.store.lease_refresh(&current.id_hash, &current.access_token, now, now + REFRESH_LEASE).await
        {
            Ok(true) => {}
            Ok(false) => {
                // Another instance refreshes, or already has: wait for, or read, its tokens.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            Err(error) => return Err(server_error("leasing a refresh failed", &error)),
        }
        let key = session_key(&current).map_err(unreadable_key)?;
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
        let result = bff.provider.token(&form, key.as_deref(), now).await;
        return match result {
            Ok(tokens) => {
                let lifetime = tokens.expires_in.unwrap_or(300).max(1);
                let refresh = tokens.refresh_token.or(Some(refresh_token));
                if let Err(error) = bff
                    .store
                    .save_tokens(
                        &current.id_hash,
                        &tokens.access_token,
                        refresh.as_deref(),
                        now,
                        now + lifetime,
                    )
                    .await
                {
                    return Err(server_error("saving refreshed tokens failed", &error));
                }
                info!("access token refreshed");
                bff.sessions.put(Session {
                    access_token: tokens.access_token.clone(),
                    refresh_token: refresh,
                    access_issued_at: now,
                    access_expires_at: now + lifetime,
                    ..current
                });
                Ok(Credential { token: tokens.access_token, dpop: key })
            }
            Err(error) => {
                // The grant is gone (revoked, expired, reused): so is the session.
                warn!(%error, "refresh failed: session ended");
                bff.sessions.remove(&current.id_hash);
                let _ = bff.store.delete_session(&current.id_hash).await;
                Err(status(StatusCode::UNAUTHORIZED, "no_session"))
            }
        };
    }
    let _ = bff.store.release_refresh(&session.id_hash).await;
    Err(status(StatusCode::SERVICE_UNAVAILABLE, "refresh_pending"))
}

/// The session's DPoP key, when its tokens are bound to one.
fn session_key(session: &Session) -> Result<Option<Arc<SigningKey>>, String> {
    let Some(stored) = &session.dpop_key else { return Ok(None) };
    let pkcs8 = URL_SAFE_NO_PAD.decode(stored).map_err(|e| e.to_string())?;
    Ok(Some(Arc::new(SigningKey::from_es256_pkcs8(&pkcs8)?)))
}

fn credential(session: Session) -> Result<Credential, String> {
    let dpop = session_key(&session)?;
    Ok(Credential { token: session.access_token, dpop })
}

fn unreadable_key(error: String) -> Response {
    server_error("a session's DPoP key is unreadable", &error)
}

fn needs_refresh(session: &Session, now: i64) -> bool {
    let lifetime = (session.access_expires_at - session.access_issued_at).max(0);
    let margin = (lifetime / 4).min(60);
    session.access_expires_at - now < margin
}

async fn client_token(bff: &Bff) -> Result<Credential, Response> {
    let now = bff.clock.now();
    let mut cached = bff.client_token.lock().await;
    if let Some((credential, expires_at)) = cached.as_ref()
        && *expires_at - 30 > now
    {
        return Ok(credential.clone());
    }
    let scope = bff
        .config
        .scopes
        .iter()
        .filter(|s| {
            !matches!(s.as_str(), "openid" | "profile" | "email" | "offline_access" | "address" | "phone")
        })
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let mut form = vec![("grant_type", "client_credentials")];
    if !scope.is_empty() {
        form.push(("scope", &scope));
    }
    let key = bff.client_dpop.clone();
    match bff.provider.token(&form, key.as_deref(), now).await {
        Ok(tokens) => {
            let dpop = if tokens.is_dpop() { key } else { None };
            let credential = Credential { token: tokens.access_token, dpop };
            *cached = Some((credential.clone(), now + tokens.expires_in.unwrap_or(300)));
            Ok(credential)
        }
        Err(error) => {
            warn!(%error, "client credentials failed");
            Err(status(StatusCode::BAD_GATEWAY, "upstream_token_failed"))
        }
    }
}

/// Headers never forwarded upstream: the browser's credentials, and hop-by-hop
/// headers (RFC 9110 §7.6.1).
const NOT_FORWARDED: &[&str] = &[
    "cookie",
    "authorization",
    "host",
    "x-csrf",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "proxy-authorization",
];

const NOT_RETURNED: &[&str] =
    &["connection", "keep-alive", "transfer-encoding", "trailer", "upgrade", "content-length", "set-cookie"];

async fn proxy(
    State(bff): State<Arc<Bff>>,
    index: usize,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(api) = bff.config.apis.get(index) else { return StatusCode::NOT_FOUND.into_response() };
    if !csrf_ok(&headers) {
        info!(api = %api.path, "API call refused: no X-CSRF: 1");
        return status(StatusCode::UNAUTHORIZED, "csrf_header_required");
    }
    let session = match current_session(&bff, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let credential = match (api.token, session) {
        (TokenMode::None, _) => None,
        (_, None) => return status(StatusCode::UNAUTHORIZED, "no_session"),
        (TokenMode::User, Some(session)) => match user_token(&bff, session).await {
            Ok(credential) => Some(credential),
            Err(response) => return response,
        },
        (TokenMode::Client, Some(_)) => match client_token(&bff).await {
            Ok(credential) => Some(credential),
            Err(response) => return response,
        },
    };
    let rest = uri.path().strip_prefix(api.path.as_str()).unwrap_or("");
    let mut target = format!("{}{rest}", api.upstream);
    if let Some(query) = uri.query() {
        target.push('?');
        target.push_str(query);
    }
    let mut attempt = 0;
    let upstream = loop {
        attempt += 1;
        let mut request = bff.http.request(method.clone(), &target);
        for (name, value) in &headers {
            if !NOT_FORWARDED.contains(&name.as_str()) {
                request = request.header(name, value);
            }
        }
        match &credential {
            None => {}
            Some(Credential { token, dpop: None }) => request = request.bearer_auth(token),
            // RFC 9449 §7.1: the DPoP scheme, and a proof with `ath` for this request.
            Some(Credential { token, dpop: Some(key) }) => {
                let nonce = bff.api_nonces.lock().ok().and_then(|n| n.get(&index).cloned());
                let proof = match key.dpop_proof(
                    method.as_str(),
                    &target,
                    bff.clock.now(),
                    Some(token),
                    nonce.as_deref(),
                ) {
                    Ok(proof) => proof,
                    Err(error) => return server_error("signing a DPoP proof failed", &error),
                };
                request =
                    request.header(header::AUTHORIZATION, format!("DPoP {token}")).header("DPoP", proof);
            }
        }
        let upstream = match request.body(body.clone()).send().await {
            Ok(upstream) => upstream,
            Err(error) => {
                warn!(%error, api = %api.path, "upstream unreachable");
                return status(StatusCode::BAD_GATEWAY, "upstream_unreachable");
            }
        };
        // RFC 9449 §9: a resource server that wants a nonce answers 401 with
        // `error="use_dpop_nonce"` and the nonce; the call is sent once more with it.
        let dpop_bound = credential.as_ref().is_some_and(|c| c.dpop.is_some());
        if dpop_bound
            && let Some(nonce) = upstream.headers().get("dpop-nonce").and_then(|v| v.to_str().ok())
            && let Ok(mut nonces) = bff.api_nonces.lock()
        {
            nonces.insert(index, nonce.to_owned());
        }
        let wants_nonce = upstream.status() == StatusCode::UNAUTHORIZED
            && upstream
                .headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .any(|v| v.to_str().is_ok_and(|v| v.contains("use_dpop_nonce")));
        if dpop_bound && wants_nonce && attempt == 1 {
            continue;
        }
        break upstream;
    };
    let code = upstream.status();
    let mut out_headers = HeaderMap::new();
    for (name, value) in upstream.headers() {
        if !NOT_RETURNED.contains(&name.as_str()) {
            out_headers.append(name, value.clone());
        }
    }
    let body = match upstream.bytes().await {
        Ok(body) => body,
        Err(error) => {
            warn!(%error, api = %api.path, "upstream body failed");
            return status(StatusCode::BAD_GATEWAY, "upstream_unreachable");
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = code;
    *response.headers_mut() = out_headers;
    response
}

/// `static_dir`: the file asked for, else `index.html` (the SPA's own routes).
async fn static_file(State(bff): State<Arc<Bff>>, uri: Uri) -> Response {
    let Some(dir) = &bff.config.static_dir else { return StatusCode::NOT_FOUND.into_response() };
    let path = uri.path().trim_start_matches('/');
    let safe = !path.split('/').any(|part| part == ".." || part.starts_with('.')) && !path.contains('\\');
    let candidate = if safe && !path.is_empty() { Some(dir.join(path)) } else { None };
    let (file, bytes) = match candidate {
        Some(file) if file.is_file() => match tokio::fs::read(&file).await {
            Ok(bytes) => (file, bytes),
            Err(_) => return StatusCode::NOT_FOUND.into_response(),
        },
        _ => {
            let index = dir.join("index.html");
            match tokio::fs::read(&index).await {
                Ok(bytes) => (index, bytes),
                Err(_) => return StatusCode::NOT_FOUND.into_response(),
            }
        }
    };
    let kind = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    };
    ([(header::CONTENT_TYPE, kind)], bytes).into_response()
}
