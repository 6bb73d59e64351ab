//! Authorization Code + PKCE with OpenID Connect, driven by the `openidconnect` crate
//! as the client and a cookie-keeping browser submitting the real forms.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;

use crate::browser::{Browser, query};
use crate::support::{TestServer, oauth_error};

async fn metadata(app: &TestServer) -> CoreProviderMetadata {
    CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer.clone()).unwrap(), &app.http)
        .await
        .expect("discovery")
}

#[tokio::test]
async fn web_app_signs_a_user_in_with_openid_connect() {
    let app = TestServer::spawn().await;
    let client = CoreClient::from_provider_metadata(
        metadata(&app).await,
        ClientId::new("web".into()),
        Some(ClientSecret::new("web-secret".into())),
    )
    .set_redirect_uri(RedirectUrl::new("https://web.example/cb".into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("api1.read".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    let mut browser = Browser::new(&app);
    let redirect = browser.authorize(url.as_str(), "alice", "alice-password-1").await;
    assert_eq!(redirect.as_str().split('?').next(), Some("https://web.example/cb"));
    assert_eq!(query(&redirect, "state").as_deref(), Some(state.secret().as_str()));
    assert_eq!(query(&redirect, "iss").as_deref(), Some(app.issuer.as_str()), "RFC 9207");

    let code = query(&redirect, "code").expect("a code");
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&app.http)
        .await
        .expect("token response");
    let id_token = token.id_token().expect("an ID token for openid");
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).expect("a valid ID token");
    assert_eq!(claims.subject().as_str(), "alice-sub");
    assert!(claims.auth_time().is_some());
    let expected_hash = AccessTokenHash::from_token(
        token.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash), "at_hash");
    assert!(token.refresh_token().is_some(), "offline_access gives a refresh token");

    let access = app.verify_jwt(token.access_token().secret()).await;
    assert_eq!((access["sub"].as_str(), access["aud"].as_str()), (Some("alice-sub"), Some("api1")));

    let userinfo: CoreUserInfoClaims = client
        .user_info(token.access_token().clone(), None)
        .unwrap()
        .request_async(&app.http)
        .await
        .expect("userinfo");
    assert_eq!(userinfo.subject().as_str(), "alice-sub");
    assert_eq!(userinfo.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert_eq!(userinfo.name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("Alice Smith"));
}

#[tokio::test]
async fn native_app_uses_pkce_alone_on_a_random_loopback_port() {
    let app = TestServer::spawn().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let redirect_uri = format!("http://127.0.0.1:{}/callback", listener.local_addr().unwrap().port());
    let client =
        CoreClient::from_provider_metadata(metadata(&app).await, ClientId::new("native".into()), None)
            .set_redirect_uri(RedirectUrl::new(redirect_uri.clone()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let redirect = Browser::new(&app).authorize(url.as_str(), "alice", "alice-password-1").await;
    assert!(redirect.as_str().starts_with(&redirect_uri), "{redirect}");
    let code = query(&redirect, "code").unwrap();
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&app.http)
        .await
        .expect("public client redeems with PKCE alone");
    let claims = token.id_token().unwrap().claims(&client.id_token_verifier(), &nonce).unwrap();
    assert_eq!(claims.subject().as_str(), "alice-sub");
}

/// Starts an authorization for `client_id` and returns (url, verifier).
pub fn authorization_url(
    app: &TestServer,
    client_id: &str,
    redirect_uri: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let verifier = tessera_core::random::Rng::default().token();
    let challenge = tessera_core::secret::b64url(tessera_core::secret::sha256(verifier.as_bytes()));
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", scope),
        ("state", "st-123"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in extra {
        params.retain(|(n, _)| n != name);
        params.push((name, value));
    }
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    (format!("{}?{query}", app.url("/authorize")), verifier)
}

/// Redeems a code for `web` and returns the raw response.
pub async fn redeem(app: &TestServer, code: &str, verifier: &str, redirect_uri: &str) -> reqwest::Response {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", verifier),
        ("redirect_uri", redirect_uri),
    ];
    app.post_form("/token", Some(("web", "web-secret")), &form).await
}

/// A full sign-in for `web`: returns the token response JSON.
pub async fn web_tokens(app: &TestServer, browser: &mut Browser<'_>, scope: &str) -> Value {
    let (url, verifier) = authorization_url(app, "web", "https://web.example/cb", scope, &[]);
    let redirect = browser.authorize(&url, "alice", "alice-password-1").await;
    let code = query(&redirect, "code").expect("code");
    let response = redeem(app, &code, &verifier, "https://web.example/cb").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn consent_is_remembered_per_user_and_client() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid profile", &[]);
    let login = browser.open(&url).await;
    assert!(login.body.contains("<label for=\"username\">Username</label>"));
    assert!(login.body.contains("<label for=\"password\">Password</label>"));
    let consent = browser.sign_in(&login, "alice", "alice-password-1").await;
    assert!(consent.body.contains("Web App"), "client name on the consent page");
    assert!(consent.body.contains(">Allow<") && consent.body.contains(">Deny<"));
    let done = browser.consent(&consent, "allow").await;
    assert!(query(&url::Url::parse(done.location.as_deref().unwrap()).unwrap(), "code").is_some());

    // Same scopes again: signed in and consented, straight back to the client.
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid profile", &[]);
    let again = browser.open(&url).await;
    let location = url::Url::parse(again.location.as_deref().expect("redirect to the client")).unwrap();
    assert!(query(&location, "code").is_some());

    // A new scope asks again.
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid profile email", &[]);
    let page = browser.open(&url).await;
    assert!(page.body.contains("value=\"allow\""), "consent asked for the new scope");
}

#[tokio::test]
async fn denying_consent_returns_access_denied_with_state_and_iss() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let login = browser.open(&url).await;
    let consent = browser.sign_in(&login, "alice", "alice-password-1").await;
    let denied = browser.consent(&consent, "deny").await;
    let location = url::Url::parse(denied.location.as_deref().unwrap()).unwrap();
    assert_eq!(query(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&location, "state").as_deref(), Some("st-123"));
    assert_eq!(query(&location, "iss").as_deref(), Some(app.issuer.as_str()));
    assert!(query(&location, "code").is_none());
}

#[tokio::test]
async fn form_post_response_mode_answers_with_a_self_submitting_form() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let (url, _) = authorization_url(
        &app,
        "trusted",
        "https://trusted.example/cb",
        "openid",
        &[("response_mode", "form_post")],
    );
    let login = browser.open(&url).await;
    let page = browser.sign_in(&login, "alice", "alice-password-1").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("action=\"https:&#x2f;&#x2f;trusted.example&#x2f;cb\"")
            || page.body.contains("action=\"https://trusted.example/cb\""),
        "{}",
        page.body
    );
    assert!(page.input("code").is_some());
    assert_eq!(page.input("state").as_deref(), Some("st-123"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'nonce-"), "{csp}");
}

#[tokio::test]
async fn pages_cannot_be_framed_and_carry_a_strict_policy() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let login = browser.open(&url).await;
    assert_eq!(login.headers["x-frame-options"], "DENY");
    let csp = login.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(login.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn userinfo_refuses_bad_revoked_and_non_openid_tokens() {
    let app = TestServer::spawn().await;
    let response = app.http.get(app.url("/userinfo")).bearer_auth("nonsense").send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));

    let service_token = app.svc_token(&[]).await["access_token"].as_str().unwrap().to_owned();
    let response = app.http.get(app.url("/userinfo")).bearer_auth(&service_token).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));

    let mut browser = Browser::new(&app);
    let tokens = web_tokens(&app, &mut browser, "openid profile").await;
    let access = tokens["access_token"].as_str().unwrap();
    let response = app.http.post(app.url("/userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["name"], "Alice Smith");
    app.post_form("/revoke", Some(("web", "web-secret")), &[("token", access)]).await;
    let response = app.http.get(app.url("/userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(response.status(), 401, "revoked token refused at once");

    let tokens = web_tokens(&app, &mut browser, "openid profile").await;
    app.clock.advance(3600);
    let response = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "expired token refused");
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[("prompt", "none")]);
    let page = browser.get(&url).await;
    let location = url::Url::parse(page.location.as_deref().unwrap()).unwrap();
    assert!(location.as_str().starts_with("https://web.example/cb?"));
    assert_eq!(query(&location, "error").as_deref(), Some("login_required"));
    assert_eq!(query(&location, "state").as_deref(), Some("st-123"));
}

#[tokio::test]
async fn prompt_login_asks_a_signed_in_user_again() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    web_tokens(&app, &mut browser, "openid").await;
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[("prompt", "login")]);
    let page = browser.open(&url).await;
    assert!(page.body.contains("name=\"password\""), "sign-in page shown again");
    let done = browser.sign_in(&page, "alice", "alice-password-1").await;
    assert!(done.location.unwrap().contains("code="));
}

#[tokio::test]
async fn rp_initiated_logout_ends_the_session_and_returns_with_state() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let tokens = web_tokens(&app, &mut browser, "openid").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let query_string = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", "https://web.example/signed-out")
        .append_pair("state", "bye-1")
        .finish();
    let page = browser.get(&format!("/logout?{query_string}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(">Sign out<"));
    // GET alone signs nobody out: only the confirmed POST does.
    let csrf = page.input("csrf_token").unwrap();
    let mut form: Vec<(&str, String)> = vec![("csrf_token", csrf)];
    for name in ["id_token_hint", "post_logout_redirect_uri", "state"] {
        form.push((name, page.input(name).unwrap()));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = browser.post("/logout", &form).await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location.as_deref(), Some("https://web.example/signed-out?state=bye-1"));

    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[("prompt", "none")]);
    let page = browser.get(&url).await;
    assert!(page.location.unwrap().contains("error=login_required"), "the session is gone");
}

#[tokio::test]
async fn logout_to_an_unregistered_uri_redirects_nowhere() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let tokens = web_tokens(&app, &mut browser, "openid").await;
    let query_string = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", tokens["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", "https://evil.example/")
        .finish();
    let page = browser.get(&format!("/logout?{query_string}")).await;
    assert_eq!(page.status, 400);
    assert!(page.location.is_none());
}

#[tokio::test]
async fn a_token_request_for_another_clients_code_is_invalid_grant() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let (url, verifier) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let code = query(&browser.authorize(&url, "alice", "alice-password-1").await, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", "https://web.example/cb"),
    ];
    let response = app.post_form("/token", Some(("trusted", "trusted-secret")), &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_grant".into()));
}

#[tokio::test]
async fn max_age_asks_a_user_who_signed_in_too_long_ago_to_sign_in_again() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    web_tokens(&app, &mut browser, "openid").await;
    app.clock.advance(120);
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[("max_age", "600")]);
    let page = browser.open(&url).await;
    assert!(page.location.as_deref().is_some_and(|l| l.contains("code=")), "recent enough: no sign-in");
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[("max_age", "60")]);
    let page = browser.open(&url).await;
    assert!(page.body.contains("name=\"password\""), "signed in 120 s ago, max_age 60: sign in again");
}

#[tokio::test]
async fn a_session_started_on_one_instance_continues_on_another() {
    let Ok(base_url) = std::env::var("TESSERA_TEST_POSTGRES") else {
        eprintln!("TESSERA_TEST_POSTGRES is not set: skipping the PostgreSQL run");
        return;
    };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    let issuer = "https://tessera.example";
    let a = TestServer::spawn_instance(issuer, &schema.url, crate::support::temp_dir("sess-a")).await;
    let b = TestServer::spawn_instance(issuer, &schema.url, crate::support::temp_dir("sess-b")).await;
    // Sign in on A...
    let mut on_a = Browser::new(&a);
    let (url, _) = authorization_url(&a, "trusted", "https://trusted.example/cb", "openid", &[]);
    let login = on_a.open(&url).await;
    let done = on_a.sign_in(&login, "alice", "alice-password-1").await;
    assert!(done.location.unwrap().contains("code="));
    // ...and the same browser cookies are a session on B (prompt=none succeeds there).
    let mut on_b = on_a.moved_to(&b);
    let (url, _) =
        authorization_url(&b, "trusted", "https://trusted.example/cb", "openid", &[("prompt", "none")]);
    let page = on_b.get(&url).await;
    assert!(page.location.as_deref().is_some_and(|l| l.contains("code=")), "session continued on B");
    a.stop().await;
    b.stop().await;
    schema.drop().await;
}

/// RFC 6750 §3.1: a request without any token gets the bare challenge (no error
/// code); a bad token gets `invalid_token`.
#[tokio::test]
async fn userinfo_without_a_token_gets_a_challenge_without_an_error_code() {
    let app = TestServer::spawn().await;
    let response = app.http.get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"tessera\"");
    let response = app.http.get(app.url("/userinfo")).bearer_auth("made-up").send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
}

/// ID tokens say how the user signed in (`amr` `pwd`, RFC 8176; `acr` `pwd`); a request
/// whose `acr_values` name only levels this server cannot reach ends at the client with
/// `unmet_authentication_requirements`, one that includes `pwd` signs in as usual.
#[tokio::test]
async fn id_tokens_carry_amr_and_acr_and_unreachable_acr_values_are_refused() {
    use base64::Engine as _;
    let app = TestServer::spawn().await;
    let metadata = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(metadata["acr_values_supported"], serde_json::json!(["pwd", "mfa", "phr"]));
    let mut browser = Browser::new(&app);
    let tokens = web_tokens(&app, &mut browser, "openid").await;
    let payload = tokens["id_token"].as_str().unwrap().split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
            .unwrap();
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims["acr"], "pwd");

    let (url, _) =
        authorization_url(&app, "web", "https://web.example/cb", "openid", &[("acr_values", "mfa phr")]);
    let page = browser.get(&url).await;
    let location = url::Url::parse(page.location.as_deref().expect("back to the client")).unwrap();
    assert!(location.as_str().starts_with("https://web.example/cb"));
    assert_eq!(query(&location, "error").as_deref(), Some("unmet_authentication_requirements"));
    assert_eq!(query(&location, "state").as_deref(), Some("st-123"));

    let (url, _) =
        authorization_url(&app, "web", "https://web.example/cb", "openid", &[("acr_values", "mfa pwd")]);
    let done = browser.open(&url).await;
    let location = url::Url::parse(done.location.as_deref().expect("back to the client")).unwrap();
    assert!(query(&location, "code").is_some(), "{location}");
}
