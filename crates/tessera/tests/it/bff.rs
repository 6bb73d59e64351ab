//! `tessera bff` (issue 17) against a real Tessera, with an echo API behind it: the
//! code flow through the sign-in pages, the session cookie, `/bff/user`, the proxy
//! with the user's token, CSRF header, logout and back-channel logout, and one
//! refresh per session under parallel calls.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use base64::Engine as _;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use tessera_core::clock::MockClock;
use tokio::net::TcpListener;

use crate::browser::Browser;
use crate::support::{TestServer, temp_dir};

pub(crate) struct SharedClock(Arc<MockClock>);

impl tessera_bff::Clock for SharedClock {
    fn now(&self) -> i64 {
        tessera_core::Clock::now(&*self.0)
    }
}

/// An API that answers with what it received.
async fn echo_api() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let app = axum::Router::new().fallback(
        |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| async move {
            let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
            axum::Json(json!({
                "method": method.as_str(),
                "path": uri.path(),
                "query": uri.query(),
                "authorization": header("authorization"),
                "cookie": header("cookie"),
                "dpop": header("dpop"),
                "x_custom": header("x-custom"),
                "body": String::from_utf8_lossy(&body),
            }))
        },
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// Tessera with the `spa-bff` client, an echo API, and a BFF in front of both.
struct Setup {
    app: TestServer,
    bff: String,
    http: reqwest::Client,
    /// The directory of the BFF's file (and of its SQLite store).
    dir: std::path::PathBuf,
}

pub(crate) fn client_toml(bff: &str) -> String {
    format!(
        "[[clients]]\nclient_id = \"spa-bff\"\nclient_name = \"SPA\"\nallowed_grant_types = [\"authorization_code\"]\n\
         client_secrets = [{{ value = \"spa-bff-secret\" }}]\nredirect_uris = [\"{bff}/bff/callback\"]\n\
         post_logout_redirect_uris = [\"{bff}/\"]\nallowed_scopes = [\"openid\", \"profile\", \"api1.read\"]\n\
         allow_offline_access = true\n"
    )
}

async fn start_bff(
    listener: TcpListener,
    issuer: &str,
    echo: &str,
    storage: &str,
    clock: Arc<MockClock>,
) -> (String, std::path::PathBuf) {
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let extra = format!(
        "client_secret = \"spa-bff-secret\"\nstorage = \"{storage}\"\n[[bff.apis]]\npath = \"/api\"\nupstream = \"{echo}\"\ntoken = \"user\"\n"
    );
    let dir = start_bff_with(listener, &base, issuer, clock, &extra).await;
    (base, dir)
}

/// Starts a BFF for the `spa-bff` client at `public_url`; `extra` adds `[bff]` keys
/// (the client's authentication among them) and `[[bff.apis]]` tables. The file is written to a fresh directory, returned.
pub(crate) async fn start_bff_with(
    listener: TcpListener,
    public_url: &str,
    issuer: &str,
    clock: Arc<MockClock>,
    extra: &str,
) -> std::path::PathBuf {
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir("bff");
    let lifetimes = if extra.contains("session_idle") {
        ""
    } else {
        "session_lifetime = \"8h\"\nsession_idle = \"8h\"\n"
    };
    let text = format!(
        "[bff]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{public_url}\"\nissuer = \"{issuer}\"\n\
         client_id = \"spa-bff\"\n\
         scopes = [\"openid\", \"profile\", \"offline_access\", \"api1.read\"]\n{lifetimes}{extra}"
    );
    let path = dir.join("bff.toml");
    std::fs::write(&path, text).unwrap();
    let config = tessera_bff::config::load(&path).unwrap();
    let router = tessera_bff::router(config, Arc::new(SharedClock(clock))).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    dir
}

impl Setup {
    async fn start() -> Self {
        Self::start_on(None).await
    }

    /// Tessera with the clients `clients(bff)` declares, an echo API, and a BFF whose
    /// file adds `extra(echo, issuer)`.
    async fn start_custom(
        clients: impl FnOnce(&str) -> String,
        extra: impl FnOnce(&str, &str) -> String,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bff = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let app = TestServer::spawn_with(&clients(&bff)).await;
        let echo = echo_api().await;
        let dir =
            start_bff_with(listener, &bff, &app.issuer, app.clock.clone(), &extra(&echo, &app.issuer)).await;
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { app, bff, http, dir }
    }

    async fn start_on(storage: Option<&str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bff = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let app = TestServer::spawn_with(&client_toml(&bff)).await;
        let echo = echo_api().await;
        let storage = storage.map_or_else(|| "sqlite://bff.db".to_owned(), str::to_owned);
        let (_, dir) = start_bff(listener, &app.issuer, &echo, &storage, app.clock.clone()).await;
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { app, bff, http, dir }
    }

    /// Signs alice in through the BFF; returns the session cookie value and the
    /// `Set-Cookie` header that carried it.
    async fn sign_in(&self) -> (String, String) {
        let start =
            self.http.get(format!("{}/bff/login?returnUrl=/app/home", self.bff)).send().await.unwrap();
        assert_eq!(start.status(), 303);
        let cookies = set_cookies(start.headers());
        let authorize = start.headers()[LOCATION].to_str().unwrap().to_owned();
        let url = url::Url::parse(&authorize).unwrap();
        let query: BTreeMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["prompt"], "consent", "offline_access asks for consent (OIDC Core §11)");
        assert_eq!(query["code_challenge_method"], "S256");
        assert!(query.contains_key("nonce"));
        let back = Browser::new(&self.app).authorize(&authorize, "alice", "alice-password-1").await;
        assert!(back.as_str().starts_with(&format!("{}/bff/callback", self.bff)), "{back}");
        let state = &cookies["__Host-bff-state"].0;
        let done = self
            .http
            .get(back.as_str())
            .header("cookie", format!("__Host-bff-state={state}"))
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 303, "{}", done.text().await.unwrap());
        assert_eq!(done.headers()[LOCATION], "/app/home");
        let cookies = set_cookies(done.headers());
        let (value, header) = cookies["__Host-bff"].clone();
        (value, header)
    }

    async fn get(&self, path: &str, session: Option<&str>, csrf: bool) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.bff));
        if let Some(session) = session {
            request = request.header("cookie", format!("__Host-bff={session}"));
        }
        if csrf {
            request = request.header("x-csrf", "1");
        }
        request.send().await.unwrap()
    }
}

fn set_cookies(headers: &reqwest::header::HeaderMap) -> BTreeMap<String, (String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| {
            let text = v.to_str().unwrap().to_owned();
            let (name, value) = text.split(';').next().unwrap().split_once('=').unwrap();
            (name.to_owned(), (value.to_owned(), text.clone()))
        })
        .collect()
}

fn claim(user: &Value, kind: &str) -> Value {
    user.as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .map(|c| c["value"].clone())
        .unwrap_or(Value::Null)
}

fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
        .unwrap()
}

#[tokio::test]
async fn a_browser_signs_in_through_the_bff_and_the_api_receives_the_users_token() {
    let setup = Setup::start().await;
    let (session, header) = setup.sign_in().await;
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(header.contains(attribute), "{attribute} missing in {header}");
    }
    assert!(!session.contains('.') && session.len() >= 43, "an opaque random id, not a token");

    let user = setup.get("/bff/user", Some(&session), true).await;
    assert_eq!(user.status(), 200);
    let user: Value = user.json().await.unwrap();
    assert_eq!(claim(&user, "sub"), "alice-sub");
    assert!(claim(&user, "bff:logout_url").as_str().unwrap().starts_with("/bff/logout?sid="));
    assert!(claim(&user, "bff:session_expires_in").as_i64().unwrap() > 0);
    let text = user.to_string();
    assert!(!text.contains("eyJ"), "no token in /bff/user: {text}");

    let call = setup
        .http
        .post(format!("{}/api/things/1?x=1&y=two", setup.bff))
        .header("cookie", format!("__Host-bff={session}; other=browser-cookie"))
        .header("authorization", "Bearer from-the-browser")
        .header("x-csrf", "1")
        .header("x-custom", "kept")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), 200);
    let echo: Value = call.json().await.unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/things/1");
    assert_eq!(echo["query"], "x=1&y=two");
    assert_eq!(echo["body"], "payload");
    assert_eq!(echo["x_custom"], "kept");
    assert_eq!(echo["cookie"], Value::Null, "browser cookies are not forwarded");
    let bearer = echo["authorization"].as_str().unwrap().strip_prefix("Bearer ").unwrap().to_owned();
    assert_ne!(bearer, "from-the-browser");
    let claims = setup.app.verify_jwt(&bearer).await;
    assert_eq!(claims["sub"], "alice-sub");
}

#[tokio::test]
async fn without_x_csrf_or_without_a_session_user_and_api_calls_get_401() {
    let setup = Setup::start().await;
    let (session, _) = setup.sign_in().await;
    for path in ["/bff/user", "/api/x"] {
        let response = setup.get(path, Some(&session), false).await;
        assert_eq!(response.status(), 401, "{path} without X-CSRF");
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "csrf_header_required");
        let response = setup.get(path, None, true).await;
        assert_eq!(response.status(), 401, "{path} without a session");
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "no_session");
        let response = setup.get(path, Some("made-up"), true).await;
        assert_eq!(response.status(), 401, "{path} with an unknown cookie");
    }
}

#[tokio::test]
async fn a_return_url_that_is_not_a_local_path_is_refused_with_400() {
    let setup = Setup::start().await;
    for bad in ["https://evil.example/", "//evil.example", "/\\evil.example", "/a\r\nSet-Cookie:x", "evil"] {
        let encoded = url::form_urlencoded::byte_serialize(bad.as_bytes()).collect::<String>();
        let response = setup.get(&format!("/bff/login?returnUrl={encoded}"), None, false).await;
        assert_eq!(response.status(), 400, "{bad}");
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_return_url");
    }
    let fine = setup.get("/bff/login?returnUrl=/deep/link?q=1", None, false).await;
    assert_eq!(fine.status(), 303);
}

#[tokio::test]
async fn a_callback_without_the_browsers_state_cookie_is_refused() {
    let setup = Setup::start().await;
    let start = setup.get("/bff/login", None, false).await;
    let authorize = start.headers()[LOCATION].to_str().unwrap().to_owned();
    let back = Browser::new(&setup.app).authorize(&authorize, "alice", "alice-password-1").await;
    let response = setup.http.get(back.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_state");
}

#[tokio::test]
async fn logout_with_a_wrong_or_missing_sid_is_refused_and_the_right_one_ends_the_session_at_the_provider() {
    let setup = Setup::start().await;
    let (session, _) = setup.sign_in().await;
    for query in ["", "?sid=wrong"] {
        let response = setup.get(&format!("/bff/logout{query}"), Some(&session), false).await;
        assert_eq!(response.status(), 400, "logout{query}");
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_sid");
    }
    assert_eq!(setup.get("/bff/user", Some(&session), true).await.status(), 200, "still signed in");

    let user: Value = setup.get("/bff/user", Some(&session), true).await.json().await.unwrap();
    let logout_url = claim(&user, "bff:logout_url").as_str().unwrap().to_owned();
    let response = setup.get(&logout_url, Some(&session), false).await;
    assert_eq!(response.status(), 303);
    let location = url::Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(&setup.app.url("/")), "{location}");
    let query: BTreeMap<_, _> = location.query_pairs().into_owned().collect();
    assert!(query.contains_key("id_token_hint"));
    assert_eq!(query["post_logout_redirect_uri"], format!("{}/", setup.bff));
    assert!(set_cookies(response.headers())["__Host-bff"].1.contains("Max-Age=0"));
    assert_eq!(setup.get("/bff/user", Some(&session), true).await.status(), 401, "signed out");
    // The provider accepts the request (the URI is registered) and redirects back.
    let provider = setup.app.http.get(location.as_str()).send().await.unwrap();
    assert!(provider.status().is_redirection() || provider.status() == 200, "{}", provider.status());
}

async fn logout_token(app: &TestServer, claims: &Value) -> String {
    let now = tessera_core::Clock::now(&*app.clock);
    let keys = app.provider.keys.key_set(now).await.unwrap();
    tessera_core::tokens::jws::sign_id_token(
        claims,
        keys.signer().unwrap(),
        &tessera_core::random::Rng::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_back_channel_logout_token_ends_the_session_and_a_replay_or_a_bad_token_is_refused() {
    let setup = Setup::start().await;
    let (session, _) = setup.sign_in().await;
    let now = tessera_core::Clock::now(&*setup.app.clock);
    let event = json!({ "http://schemas.openid.net/event/backchannel-logout": {} });
    let base = json!({ "iss": setup.app.issuer, "aud": "spa-bff", "iat": now, "exp": now + 120, "sub": "alice-sub", "events": event });
    let post = |token: String| {
        let http = setup.http.clone();
        let url = format!("{}/bff/backchannel", setup.bff);
        async move { http.post(url).form(&[("logout_token", token)]).send().await.unwrap() }
    };
    // Wrong audience, no events, a nonce: refused, nobody signed out.
    let mut wrong_aud = base.clone();
    wrong_aud["aud"] = json!("someone-else");
    wrong_aud["jti"] = json!("j1");
    let mut no_events = base.clone();
    no_events.as_object_mut().unwrap().remove("events");
    no_events["jti"] = json!("j2");
    let mut with_nonce = base.clone();
    with_nonce["nonce"] = json!("n");
    with_nonce["jti"] = json!("j3");
    for claims in [wrong_aud, no_events, with_nonce] {
        let response = post(logout_token(&setup.app, &claims).await).await;
        assert_eq!(response.status(), 400, "{claims}");
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_request");
    }
    // Another issuer, a tampered payload (the signature no longer matches), an
    // unsigned token: refused too.
    let mut other_issuer = base.clone();
    other_issuer["iss"] = json!("https://evil.example");
    other_issuer["jti"] = json!("j4");
    let response = post(logout_token(&setup.app, &other_issuer).await).await;
    assert_eq!(response.status(), 400, "another issuer");
    let mut signed = base.clone();
    signed["jti"] = json!("j5");
    let token = logout_token(&setup.app, &signed).await;
    let parts: Vec<&str> = token.split('.').collect();
    let mut tampered_claims = signed.clone();
    tampered_claims["sub"] = json!("alice-sub ");
    let tampered = format!("{}.{}.{}", parts[0], b64(&tampered_claims), parts[2]);
    let unsigned = format!("{}.{}.", b64(&json!({ "alg": "none", "typ": "logout+jwt" })), parts[1]);
    for (what, token) in [("tampered", tampered), ("unsigned", unsigned), ("garbage", "x.y.z".to_owned())] {
        let response = post(token).await;
        assert_eq!(response.status(), 400, "{what}");
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_request", "{what}");
    }
    assert_eq!(setup.get("/bff/user", Some(&session), true).await.status(), 200);

    let mut good = base.clone();
    good["jti"] = json!("j-good");
    let token = logout_token(&setup.app, &good).await;
    assert_eq!(post(token.clone()).await.status(), 200);
    assert_eq!(setup.get("/bff/user", Some(&session), true).await.status(), 401, "session ended");
    let replay = post(token).await;
    assert_eq!(replay.status(), 400, "jti replay refused");
}

/// 40 parallel API calls when the access token is about to expire: one refresh, all
/// calls carry the new token. A second refresh would reuse the rotated refresh token,
/// which the provider answers by revoking the grant (and the calls would get 401).
async fn parallel_calls_refresh_once(setup: &Setup, bffs: &[String], session: &str) {
    let before: Value = setup.get("/api/x", Some(session), true).await.json().await.unwrap();
    let old = before["authorization"].as_str().unwrap().to_owned();
    let claims = jwt_claims(old.strip_prefix("Bearer ").unwrap());
    let now = tessera_core::Clock::now(&*setup.app.clock);
    setup.app.clock.advance(claims["exp"].as_i64().unwrap() - now - 5);
    let calls = (0..40).map(|i| {
        let http = setup.http.clone();
        let url = format!("{}/api/x", bffs[i % bffs.len()]);
        let cookie = format!("__Host-bff={session}");
        async move {
            let response = http.get(url).header("cookie", cookie).header("x-csrf", "1").send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()["authorization"].as_str().unwrap().to_owned()
        }
    });
    let seen: std::collections::BTreeSet<String> = futures_join(calls).await.into_iter().collect();
    assert_eq!(seen.len(), 1, "every call carries the same refreshed token");
    assert!(!seen.contains(&old), "the token was refreshed");
}

async fn futures_join<F: std::future::Future<Output = String> + Send + 'static>(
    calls: impl Iterator<Item = F>,
) -> Vec<String> {
    let tasks: Vec<_> = calls.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test]
async fn forty_parallel_api_calls_at_expiry_cause_exactly_one_refresh() {
    let setup = Setup::start().await;
    let (session, _) = setup.sign_in().await;
    parallel_calls_refresh_once(&setup, std::slice::from_ref(&setup.bff), &session).await;
}

#[tokio::test]
async fn two_bff_instances_on_one_postgresql_share_sessions_and_refresh_once() {
    let Ok(url) = std::env::var("TESSERA_TEST_POSTGRES") else {
        eprintln!("TESSERA_TEST_POSTGRES unset: skipped");
        return;
    };
    let setup = Setup::start_on(Some(&url)).await;
    let (session, _) = setup.sign_in().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo = echo_api().await;
    let (second, _) = start_bff(listener, &setup.app.issuer, &echo, &url, setup.app.clock.clone()).await;
    let user = setup
        .http
        .get(format!("{second}/bff/user"))
        .header("cookie", format!("__Host-bff={session}"))
        .header("x-csrf", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(user.status(), 200, "the second instance knows the session");
    parallel_calls_refresh_once(&setup, &[setup.bff.clone(), second.clone()], &session).await;

    // Signed out on the first instance: the second stops honouring the session within
    // a second (it keeps sessions it read for at most that long).
    let user: Value = setup.get("/bff/user", Some(&session), true).await.json().await.unwrap();
    let logout_url = claim(&user, "bff:logout_url").as_str().unwrap().to_owned();
    assert_eq!(setup.get(&logout_url, Some(&session), false).await.status(), 303);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let after = setup
        .http
        .get(format!("{second}/api/x"))
        .header("cookie", format!("__Host-bff={session}"))
        .header("x-csrf", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401, "the session ended everywhere");
}

fn thumbprint(jwk: &Value) -> String {
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256).unwrap()
}

fn jwt_header(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

#[tokio::test]
async fn with_dpop_the_tokens_are_bound_to_a_key_the_bff_holds_and_the_provider_checks_its_proofs() {
    dpop_bound_session("").await;
}

/// RFC 9449 §8 and §9: the token endpoint and userinfo ask for a nonce; the BFF
/// answers with it.
#[tokio::test]
async fn with_dpop_the_bff_answers_a_providers_nonce_challenge() {
    dpop_bound_session("[dpop]\nrequire_nonce = true\n").await;
}

async fn dpop_bound_session(provider: &str) {
    let setup = Setup::start_custom(
        |bff| format!("{provider}{}", client_toml(bff)),
        |echo, issuer| {
            format!(
                "client_secret = \"spa-bff-secret\"\ndpop = true\nstorage = \"sqlite://bff.db\"\n\
             [[bff.apis]]\npath = \"/api\"\nupstream = \"{echo}\"\n\
             [[bff.apis]]\npath = \"/me\"\nupstream = \"{issuer}/userinfo\"\n"
            )
        },
    )
    .await;
    let (session, _) = setup.sign_in().await;

    let echo: Value = setup.get("/api/orders?page=2", Some(&session), true).await.json().await.unwrap();
    let token =
        echo["authorization"].as_str().unwrap().strip_prefix("DPoP ").expect("the DPoP scheme").to_owned();
    let proof = echo["dpop"].as_str().expect("a DPoP proof");
    let (header, claims) = (jwt_header(proof), jwt_claims(proof));
    assert_eq!(header["typ"], "dpop+jwt");
    assert!(header["jwk"].get("d").is_none(), "the proof carries the public key only");
    assert_eq!(claims["htm"], "GET");
    assert!(claims["htu"].as_str().unwrap().ends_with("/orders"), "htu without the query: {claims}");
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    assert_eq!(claims["ath"], base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash));
    let key = thumbprint(&header["jwk"]);
    let access = setup.app.verify_jwt(&token).await;
    assert_eq!(access["cnf"]["jkt"], key.as_str(), "the token is bound to the BFF's key");

    // The provider's userinfo checks the binding: through the BFF it answers ...
    let me = setup.get("/me", Some(&session), true).await;
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.unwrap()["sub"], "alice-sub");
    // ... while the token alone, as a bearer token, is refused.
    let stolen = setup.app.http.get(setup.app.url("/userinfo")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(stolen.status(), 401, "a DPoP-bound token is no bearer token");

    // Refreshed near expiry with a proof of the same key: still bound, still accepted.
    let now = tessera_core::Clock::now(&*setup.app.clock);
    setup.app.clock.advance(access["exp"].as_i64().unwrap() - now - 5);
    let echo: Value = setup.get("/api/x", Some(&session), true).await.json().await.unwrap();
    let refreshed = echo["authorization"].as_str().unwrap().strip_prefix("DPoP ").unwrap().to_owned();
    assert_ne!(refreshed, token, "refreshed");
    assert_eq!(setup.app.verify_jwt(&refreshed).await["cnf"]["jkt"], key.as_str());
    assert_eq!(thumbprint(&jwt_header(echo["dpop"].as_str().unwrap())["jwk"]), key);
    assert_eq!(setup.get("/me", Some(&session), true).await.status(), 200);
}

/// The public JWK as a TOML inline table, for `client_secrets = [{ jwk = … }]`.
fn toml_jwk(jwk: &jsonwebtoken::jwk::Jwk) -> String {
    let Value::Object(members) = serde_json::to_value(jwk).unwrap() else { unreachable!() };
    let fields: Vec<String> = members.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    format!("{{ {} }}", fields.join(", "))
}

#[tokio::test]
async fn with_a_client_key_the_bff_authenticates_by_private_key_jwt() {
    let dir = temp_dir("bff-key");
    let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap().serialize_pem();
    std::fs::write(dir.join("bff-key.pem"), &pem).unwrap();
    // What an operator registers: the public JWK the BFF logs at start.
    let public = tessera_bff::keys::SigningKey::from_pem(pem.as_bytes()).unwrap().public_jwk().clone();
    let key_path = dir.join("bff-key.pem");
    let setup = Setup::start_custom(
        |bff| {
            client_toml(bff).replace(
                "client_secrets = [{ value = \"spa-bff-secret\" }]",
                &format!("client_secrets = [{{ jwk = {} }}]", toml_jwk(&public)),
            )
        },
        |echo, _| {
            format!(
                "client_key = \"{}\"\nstorage = \"sqlite://bff.db\"\n\
                 [[bff.apis]]\npath = \"/api\"\nupstream = \"{echo}\"\n",
                key_path.display()
            )
        },
    )
    .await;
    let (session, _) = setup.sign_in().await;
    let echo: Value = setup.get("/api/x", Some(&session), true).await.json().await.unwrap();
    let token = echo["authorization"].as_str().unwrap().strip_prefix("Bearer ").unwrap().to_owned();
    assert_eq!(setup.app.verify_jwt(&token).await["sub"], "alice-sub");
    // The shared secret is not what got the BFF in: Tessera knows only the key.
    let by_secret = setup
        .app
        .post_form(
            "/token",
            Some(("spa-bff", "spa-bff-secret")),
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        )
        .await;
    assert_eq!(by_secret.status(), 401);
}

#[tokio::test]
async fn a_client_token_api_gets_the_bffs_own_token_and_still_needs_a_session() {
    let setup = Setup::start_custom(
        |bff| {
            client_toml(bff)
                .replace("[\"authorization_code\"]", "[\"authorization_code\", \"client_credentials\"]")
        },
        |echo, _| {
            format!(
                "client_secret = \"spa-bff-secret\"\nstorage = \"sqlite://bff.db\"\n\
                 [[bff.apis]]\npath = \"/svc\"\nupstream = \"{echo}\"\ntoken = \"client\"\n\
                 [[bff.apis]]\npath = \"/open\"\nupstream = \"{echo}\"\ntoken = \"none\"\n"
            )
        },
    )
    .await;
    assert_eq!(setup.get("/svc/x", None, true).await.status(), 401, "no session, no client token");
    let (session, _) = setup.sign_in().await;
    let first: Value = setup.get("/svc/x", Some(&session), true).await.json().await.unwrap();
    let token = first["authorization"].as_str().unwrap().strip_prefix("Bearer ").unwrap().to_owned();
    let claims = setup.app.verify_jwt(&token).await;
    assert_eq!(claims["client_id"], "spa-bff");
    assert_ne!(claims["sub"], "alice-sub", "the BFF's own token, not the user's");
    assert!(claims["scope"].as_str().unwrap().split(' ').all(|s| s != "openid"), "{claims}");
    let second: Value = setup.get("/svc/y", Some(&session), true).await.json().await.unwrap();
    assert_eq!(
        second["authorization"], first["authorization"],
        "the client token is reused until near expiry"
    );
    let open: Value = setup.get("/open/z", Some(&session), true).await.json().await.unwrap();
    assert_eq!(open["authorization"], Value::Null, "token = \"none\" forwards no token");
}

/// Forwards every connection to `port` on to `target` (a load balancer, reduced).
async fn forward(port: u16, target: String) {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

#[tokio::test]
async fn a_bff_started_before_its_provider_waits_for_it_instead_of_exiting() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let issuer = format!("http://127.0.0.1:{port}");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bff = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let clock = Arc::new(MockClock::starting_now());
    let starting = tokio::spawn({
        let (bff, issuer) = (bff.clone(), issuer.clone());
        async move {
            let extra = "client_secret = \"spa-bff-secret\"\nstorage = \"sqlite://bff.db\"\n";
            start_bff_with(listener, &bff, &issuer, clock, extra).await;
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(!starting.is_finished(), "the BFF waits while the provider is unreachable");

    let dir = temp_dir("late-provider");
    let storage = format!("sqlite://{}", dir.join("tessera.db").display());
    let app = TestServer::spawn_instance(&issuer, &storage, dir).await;
    forward(port, app.base.trim_start_matches("http://").to_owned()).await;
    tokio::time::timeout(std::time::Duration::from_secs(10), starting)
        .await
        .expect("the BFF starts once the provider answers")
        .unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = http.get(format!("{bff}/bff/login")).send().await.unwrap();
    assert_eq!(login.status(), 303);
    assert!(login.headers()[LOCATION].to_str().unwrap().starts_with(&format!("{issuer}/authorize?")));
}

#[tokio::test]
async fn a_session_ends_after_its_idle_timeout_and_after_its_lifetime_however_active() {
    let setup = Setup::start_custom(client_toml, |echo, _| {
        format!(
            "client_secret = \"spa-bff-secret\"\nstorage = \"sqlite://bff.db\"\n\
             session_lifetime = \"8h\"\nsession_idle = \"1h\"\n[[bff.apis]]\npath = \"/api\"\nupstream = \"{echo}\"\n"
        )
    })
    .await;
    let (session, _) = setup.sign_in().await;
    let user: Value = setup.get("/bff/user", Some(&session), true).await.json().await.unwrap();
    let expires_in = claim(&user, "bff:session_expires_in").as_i64().unwrap();
    assert!((3600 - 5..=3600).contains(&expires_in), "the idle timeout comes first: {expires_in}");
    // Idle for longer than session_idle: gone.
    setup.app.clock.advance(3601);
    assert_eq!(setup.get("/bff/user", Some(&session), true).await.status(), 401, "idle timeout");

    // Active every 50 minutes, still ended at the absolute lifetime.
    let (session, _) = setup.sign_in().await;
    for _ in 0..9 {
        setup.app.clock.advance(3000);
        assert_eq!(setup.get("/bff/user", Some(&session), true).await.status(), 200, "kept alive");
    }
    let user: Value = setup.get("/bff/user", Some(&session), true).await.json().await.unwrap();
    let left = claim(&user, "bff:session_expires_in").as_i64().unwrap();
    assert!(left <= 8 * 3600 - 9 * 3000, "the lifetime bounds what is left: {left}");
    setup.app.clock.advance(left + 1);
    assert_eq!(setup.get("/bff/user", Some(&session), true).await.status(), 401, "absolute lifetime");
}

fn b64(value: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The session cookie is an opaque random id, and the store keeps only its hash: the
/// value in the browser appears nowhere in the BFF's database files.
#[tokio::test]
async fn the_session_id_is_random_and_stored_only_hashed() {
    let setup = Setup::start().await;
    let (first, _) = setup.sign_in().await;
    let (second, _) = setup.sign_in().await;
    assert_ne!(first, second);
    assert!(first.len() >= 32, "at least 192 bits of randomness: {first}");
    assert!(!first.contains('.'), "not a signed token: {first}");
    assert_eq!(setup.get("/bff/user", Some(&first), true).await.status(), 200);
    let mut files = 0;
    for entry in std::fs::read_dir(&setup.dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("bff.db") {
            files += 1;
            let bytes = std::fs::read(&path).unwrap();
            for id in [&first, &second] {
                let found = bytes.windows(id.len()).any(|window| window == id.as_bytes());
                assert!(!found, "{} holds a session id in plain text", path.display());
            }
        }
    }
    assert!(files >= 1, "the BFF's SQLite store is in {}", setup.dir.display());
}

/// `post_logout_redirect` names where the provider sends the browser after sign-out;
/// the provider accepts it because the client registers `{public_url}{path}`.
#[tokio::test]
async fn logout_sends_the_browser_back_to_the_configured_post_logout_path() {
    let setup = Setup::start_custom(
        |bff| client_toml(bff).replace(&format!("[\"{bff}/\"]"), &format!("[\"{bff}/signed-out\"]")),
        |echo, _| {
            format!(
                "client_secret = \"spa-bff-secret\"\nstorage = \"sqlite://bff.db\"\n\
                 post_logout_redirect = \"/signed-out\"\n\
                 [[bff.apis]]\npath = \"/api\"\nupstream = \"{echo}\"\n"
            )
        },
    )
    .await;
    let (session, _) = setup.sign_in().await;
    let user: Value = setup.get("/bff/user", Some(&session), true).await.json().await.unwrap();
    let logout_url = claim(&user, "bff:logout_url").as_str().unwrap().to_owned();
    let response = setup.get(&logout_url, Some(&session), false).await;
    assert_eq!(response.status(), 303);
    let location = url::Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
    let query: BTreeMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query["post_logout_redirect_uri"], format!("{}/signed-out", setup.bff));
    // The provider's confirmation page, confirmed, lands on the configured path.
    let mut browser = Browser::new(&setup.app);
    let page = browser.get(location.as_str()).await;
    assert_eq!(page.status, 200);
    let mut form = vec![("csrf_token".to_owned(), page.input("csrf_token").unwrap())];
    for name in query.keys() {
        if let Some(value) = page.input(name) {
            form.push((name.clone(), value));
        }
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let done = browser.post("/logout", &form).await;
    assert_eq!(done.status, 303);
    let landed = done.location.unwrap();
    assert!(landed.starts_with(&format!("{}/signed-out", setup.bff)), "{landed}");
}

/// RFC 9207: the callback's `iss` must be the provider's; Tessera always sends it, so a
/// response without it is refused too (a mix-up attack's signs). Nobody is signed in.
#[tokio::test]
async fn a_callback_naming_another_issuer_or_none_is_refused() {
    let setup = Setup::start().await;
    for tamper in ["another", "none"] {
        let start = setup.get("/bff/login?returnUrl=/", None, false).await;
        let state = set_cookies(start.headers())["__Host-bff-state"].0.clone();
        let authorize = start.headers()[LOCATION].to_str().unwrap().to_owned();
        let back = Browser::new(&setup.app).authorize(&authorize, "alice", "alice-password-1").await;
        let query: BTreeMap<_, _> = back.query_pairs().into_owned().collect();
        assert_eq!(query["iss"], setup.app.issuer, "Tessera names itself");
        let mut url = back.clone();
        {
            let mut pairs = url.query_pairs_mut();
            pairs.clear();
            for (name, value) in &query {
                match (name.as_str(), tamper) {
                    ("iss", "another") => {
                        pairs.append_pair("iss", "https://evil.example");
                    }
                    ("iss", _) => {}
                    _ => {
                        pairs.append_pair(name, value);
                    }
                }
            }
        }
        let response = setup
            .http
            .get(url.as_str())
            .header("cookie", format!("__Host-bff-state={state}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{tamper}");
        assert!(!set_cookies(response.headers()).contains_key("__Host-bff"), "no session");
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_issuer", "{tamper}");
    }
}
