//! Bad authorization requests: a page (no redirect) when the client or redirect URI
//! cannot be trusted, otherwise an error redirect with `state` and `iss`.

use crate::browser::{Browser, query};
use crate::code_flow::authorization_url;
use crate::support::{TestServer, oauth_error};

async fn error_redirect(app: &TestServer, url: &str) -> (String, url::Url) {
    let page = Browser::new(app).get(url).await;
    let location =
        url::Url::parse(page.location.as_deref().unwrap_or_else(|| panic!("no redirect: {}", page.body)))
            .unwrap();
    assert!(location.as_str().starts_with("https://web.example/cb?"), "{location}");
    assert_eq!(query(&location, "state").as_deref(), Some("st-123"));
    assert_eq!(query(&location, "iss").as_deref(), Some(app.issuer.as_str()));
    (query(&location, "error").unwrap(), location)
}

#[tokio::test]
async fn missing_or_non_s256_pkce_is_invalid_request() {
    let app = TestServer::spawn().await;
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let without = url.split('&').filter(|p| !p.starts_with("code_challenge")).collect::<Vec<_>>().join("&");
    assert_eq!(error_redirect(&app, &without).await.0, "invalid_request");
    let (plain, _) = authorization_url(
        &app,
        "web",
        "https://web.example/cb",
        "openid",
        &[("code_challenge_method", "plain")],
    );
    assert_eq!(error_redirect(&app, &plain).await.0, "invalid_request");
    let (short, _) =
        authorization_url(&app, "web", "https://web.example/cb", "openid", &[("code_challenge", "abc")]);
    assert_eq!(error_redirect(&app, &short).await.0, "invalid_request");
}

#[tokio::test]
async fn implicit_and_hybrid_response_types_are_unsupported() {
    let app = TestServer::spawn().await;
    for response_type in ["token", "id_token", "code id_token", "code token"] {
        let (url, _) = authorization_url(
            &app,
            "web",
            "https://web.example/cb",
            "openid",
            &[("response_type", response_type)],
        );
        assert_eq!(error_redirect(&app, &url).await.0, "unsupported_response_type", "{response_type}");
    }
}

#[tokio::test]
async fn unknown_or_disallowed_scopes_are_invalid_scope() {
    let app = TestServer::spawn().await;
    for scope in ["openid nope", "openid api1.write", "openid api2.read"] {
        let (url, _) = authorization_url(&app, "web", "https://web.example/cb", scope, &[]);
        assert_eq!(error_redirect(&app, &url).await.0, "invalid_scope", "{scope}");
    }
}

#[tokio::test]
async fn a_client_without_the_code_grant_is_unauthorized_client() {
    let app = TestServer::spawn_with(
        r#"
[[clients]]
client_id = "machine"
allowed_grant_types = ["client_credentials"]
client_secrets = [{ value = "m" }]
redirect_uris = ["https://web.example/cb"]
allowed_scopes = ["api1.read"]
"#,
    )
    .await;
    let (url, _) = authorization_url(&app, "machine", "https://web.example/cb", "api1.read", &[]);
    assert_eq!(error_redirect(&app, &url).await.0, "unauthorized_client");
}

#[tokio::test]
async fn an_unknown_client_or_unregistered_redirect_uri_never_redirects() {
    let app = TestServer::spawn().await;
    let cases = [
        authorization_url(&app, "ghost", "https://web.example/cb", "openid", &[]).0,
        authorization_url(&app, "web", "https://evil.example/cb", "openid", &[]).0,
        authorization_url(&app, "web", "https://web.example/cb/extra", "openid", &[]).0,
        authorization_url(&app, "native", "http://localhost:4000/callback", "openid", &[]).0,
        format!("{}?response_type=code&redirect_uri=https://web.example/cb", app.url("/authorize")),
    ];
    for url in cases {
        let page = Browser::new(&app).get(&url).await;
        assert_eq!(page.status, 400, "{url}");
        assert!(page.location.is_none(), "no redirect for {url}");
        assert!(page.body.contains("cannot be completed"));
    }
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let login = browser.open(&url).await;
    let interaction = login.input("interaction").unwrap();
    let form =
        [("interaction", interaction.as_str()), ("username", "alice"), ("password", "alice-password-1")];
    let page = browser.post("/login", &form).await;
    assert_eq!(page.status, 403);
    let forged = [
        ("csrf_token", "AAAA"),
        ("interaction", interaction.as_str()),
        ("username", "alice"),
        ("password", "alice-password-1"),
    ];
    assert_eq!(browser.post("/login", &forged).await.status, 403);
    // Another browser's token does not fit this browser's cookie.
    let mut other = Browser::new(&app);
    let other_login = other.open(&url).await;
    let stolen = other_login.input("csrf_token").unwrap();
    let form = [
        ("csrf_token", stolen.as_str()),
        ("interaction", interaction.as_str()),
        ("username", "alice"),
        ("password", "alice-password-1"),
    ];
    assert_eq!(browser.post("/login", &form).await.status, 403);
}

#[tokio::test]
async fn failed_sign_ins_do_not_reveal_accounts_and_are_throttled() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let login = browser.open(&url).await;
    let wrong = browser.sign_in(&login, "alice", "wrong").await;
    let unknown = browser.sign_in(&login, "nobody", "wrong").await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert!(wrong.body.contains("Incorrect username or password."));
    assert!(unknown.body.contains("Incorrect username or password."), "same words for an unknown account");
    for _ in 0..4 {
        browser.sign_in(&login, "alice", "wrong").await;
    }
    let paused = browser.sign_in(&login, "alice", "alice-password-1").await;
    assert_eq!(paused.status, 429, "even the right password waits");
    assert!(paused.body.contains("Too many failed attempts"));
    // Another account from elsewhere is unaffected by alice's pause.
    let mut other = Browser::new(&app);
    let bob_login = other.open(&url).await;
    let page = other.sign_in(&bob_login, "bob", "bob-password-1").await;
    assert!(page.body.contains("value=\"allow\""), "bob reaches consent");
    app.clock.advance(15 * 60);
    let fresh = browser.open(&url).await;
    let page = browser.sign_in(&fresh, "alice", "alice-password-1").await;
    assert!(page.body.contains("value=\"allow\""), "the pause ends: {}", page.status);
}

/// Fails 20 sign-ins (the per-address limit) from `browser`, each with another
/// unknown account so that no per-account limit is reached first.
async fn exhaust_address_limit(browser: &mut Browser<'_>, url: &str) {
    let login = browser.open(url).await;
    for attempt in 0..20 {
        let page = browser.sign_in(&login, &format!("nobody-{attempt}"), "wrong").await;
        assert_eq!(page.status, 401);
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_throttled() {
    let app = TestServer::spawn_with("[server.proxy]\ntrusted_addresses = [\"127.0.0.0/8\"]").await;
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    // What the client wrote first is not believed; the proxy's own entry (last) is.
    let mut attacker = Browser::forwarded_for(&app, "198.51.100.1, 203.0.113.5");
    exhaust_address_limit(&mut attacker, &url).await;
    let mut same_address = Browser::forwarded_for(&app, "192.0.2.77, 203.0.113.5");
    let login = same_address.open(&url).await;
    let page = same_address.sign_in(&login, "alice", "alice-password-1").await;
    assert_eq!(page.status, 429, "203.0.113.5 is paused, whatever it claims before the proxy's entry");
    // Someone else behind the same proxy signs in.
    let mut neighbour = Browser::forwarded_for(&app, "203.0.113.6");
    let login = neighbour.open(&url).await;
    let page = neighbour.sign_in(&login, "alice", "alice-password-1").await;
    assert!(page.body.contains("value=\"allow\""), "another address is unaffected: {}", page.status);
}

#[tokio::test]
async fn without_a_trusted_proxy_forwarded_for_is_ignored() {
    let app = TestServer::spawn().await;
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let mut attacker = Browser::forwarded_for(&app, "203.0.113.5");
    exhaust_address_limit(&mut attacker, &url).await;
    let mut spoofing = Browser::forwarded_for(&app, "203.0.113.6");
    let login = spoofing.open(&url).await;
    let page = spoofing.sign_in(&login, "alice", "alice-password-1").await;
    assert_eq!(page.status, 429, "the header cannot escape the throttle of the real peer");
}

#[tokio::test]
async fn pushed_requests_are_required_where_configured_and_single_use() {
    let app = TestServer::spawn().await;
    let (url, verifier) = authorization_url(&app, "pushy", "https://pushy.example/cb", "openid", &[]);
    let page = Browser::new(&app).get(&url).await;
    let location = url::Url::parse(page.location.as_deref().unwrap()).unwrap();
    assert_eq!(query(&location, "error").as_deref(), Some("invalid_request"), "PAR required");

    let pushed: Vec<(String, String)> = url::Url::parse(&url).unwrap().query_pairs().into_owned().collect();
    let form: Vec<(&str, &str)> = pushed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let response = app.post_form("/par", Some(("pushy", "pushy-secret")), &form).await;
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    let request_uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert_eq!(body["expires_in"], 60);

    let by_reference = format!(
        "{}?{}",
        app.url("/authorize"),
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", "pushy")
            .append_pair("request_uri", &request_uri)
            .finish()
    );
    let mut browser = Browser::new(&app);
    let redirect = browser.authorize(&by_reference, "alice", "alice-password-1").await;
    let code = query(&redirect, "code").expect("code via PAR");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", "https://pushy.example/cb"),
    ];
    assert_eq!(app.post_form("/token", Some(("pushy", "pushy-secret")), &form).await.status(), 200);

    let reused = Browser::new(&app).get(&by_reference).await;
    assert_eq!(reused.status, 400, "request_uri is single use");
    assert!(reused.location.is_none());
}

#[tokio::test]
async fn par_refuses_bad_clients_and_bad_requests_as_json() {
    let app = TestServer::spawn().await;
    let (url, _) = authorization_url(&app, "pushy", "https://pushy.example/cb", "openid", &[]);
    let pushed: Vec<(String, String)> = url::Url::parse(&url).unwrap().query_pairs().into_owned().collect();
    let form: Vec<(&str, &str)> = pushed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let response = app.post_form("/par", Some(("pushy", "wrong")), &form).await;
    assert_eq!(oauth_error(response).await, (401, "invalid_client".into()));
    let mut bad = form.clone();
    bad.retain(|(k, _)| *k != "code_challenge");
    let response = app.post_form("/par", Some(("pushy", "pushy-secret")), &bad).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_request".into()));
    let expired_uri = "urn:ietf:params:oauth:request_uri:never-pushed";
    let page = Browser::new(&app)
        .get(&format!("{}?client_id=pushy&request_uri={expired_uri}", app.url("/authorize")))
        .await;
    assert_eq!(page.status, 400);
}
