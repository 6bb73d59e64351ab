//! Issue 14: client libraries nobody here wrote, driven with their default settings
//! (the `oauth2` crate, Authlib's assertions, a browser's CORS preflight, …).

use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, Scope};
use serde_json::{Value, json};

use crate::browser::{Browser, query};
use crate::code_flow::authorization_url;
use crate::support::{ClientKey, TestServer, oauth_error};

// ---- OAuth 2.1 §4.1.1, §4.1.3: redirect_uri only when it tells something ----

#[tokio::test]
async fn oauth2_client_without_a_redirect_uri_signs_in_with_the_only_registered_one() {
    let app = TestServer::spawn().await;
    // The oauth2 crate sends no redirect_uri when none is set, at /authorize and /token.
    let client = BasicClient::new(ClientId::new("trusted".into()))
        .set_client_secret(ClientSecret::new("trusted-secret".into()))
        .set_auth_uri(AuthUrl::new(app.url("/authorize")).unwrap())
        .set_token_uri(app.token_url());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("api1.read".into()))
        .set_pkce_challenge(challenge)
        .url();
    assert!(!url.as_str().contains("redirect_uri"), "{url}");
    let redirect = Browser::new(&app).authorize(url.as_str(), "alice", "alice-password-1").await;
    assert_eq!(redirect.as_str().split('?').next(), Some("https://trusted.example/cb"));
    assert_eq!(query(&redirect, "state").as_deref(), Some(state.secret().as_str()));
    let token = client
        .exchange_code(AuthorizationCode::new(query(&redirect, "code").unwrap()))
        .set_pkce_verifier(verifier)
        .request_async(&app.http)
        .await
        .expect("no redirect_uri needed at the token endpoint when none was sent");
    let claims = app.verify_jwt(oauth2::TokenResponse::access_token(&token).secret()).await;
    assert_eq!(claims["sub"], "alice-sub");
}

#[tokio::test]
async fn a_redirect_uri_sent_to_authorize_must_be_repeated_at_the_token_endpoint() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    for (sent_at_token, expected) in
        [(None, (400, "invalid_grant")), (Some("https://web.example/other-cb"), (400, "invalid_grant"))]
    {
        let (url, verifier) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
        let code = query(&browser.authorize(&url, "alice", "alice-password-1").await, "code").unwrap();
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", verifier.as_str()),
        ];
        form.extend(sent_at_token.map(|uri| ("redirect_uri", uri)));
        let response = app.post_form("/token", Some(("web", "web-secret")), &form).await;
        assert_eq!(oauth_error(response).await, (expected.0, expected.1.to_owned()), "{sent_at_token:?}");
    }
}

#[tokio::test]
async fn omitting_the_redirect_uri_of_a_client_with_several_is_an_error_page() {
    let app = TestServer::spawn().await;
    let (url, _) = authorization_url(&app, "web", "", "api1.read", &[]);
    let url = url.replace("&redirect_uri=&", "&");
    assert!(!url.contains("redirect_uri"), "{url}");
    let page = Browser::new(&app).get(&url).await;
    assert_eq!(page.status, 400, "an error page, never a guess between registered URIs");
    assert!(page.location.is_none());
}

// ---- RFC 7523 client assertions as Authlib signs them ----

fn assertion_client(key: &ClientKey) -> String {
    format!(
        "[[clients]]\nclient_id = \"authlib\"\nallowed_grant_types = [\"client_credentials\"]\n\
         client_secrets = [{{ jwk = {} }}]\nallowed_scopes = [\"api1.read\"]\n",
        key.toml_jwk()
    )
}

async fn with_assertion(app: &TestServer, assertion: &str) -> reqwest::Response {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", assertion),
    ];
    app.post_form("/token", None, &form).await
}

/// Authlib's `private_key_jwt_sign`: `exp = iat + 3600`, `aud` the token endpoint.
fn authlib_claims(app: &TestServer, jti: &str, lifetime: i64) -> Value {
    let now = tessera_core::Clock::now(app.clock.as_ref());
    json!({ "iss": "authlib", "sub": "authlib", "aud": app.url("/token"), "iat": now,
            "exp": now + lifetime, "jti": jti })
}

#[tokio::test]
async fn an_authlib_assertion_valid_for_an_hour_is_accepted_once_until_it_expires() {
    let key = ClientKey::generate("authlib-key");
    let app = TestServer::spawn_with(&assertion_client(&key)).await;
    let assertion = key.assertion(&authlib_claims(&app, "jti-hour", 3600));
    assert_eq!(with_assertion(&app, &assertion).await.status(), 200);
    // Replay protection lasts as long as the assertion does.
    app.clock.advance(3000);
    assert_eq!(oauth_error(with_assertion(&app, &assertion).await).await, (400, "invalid_client".into()));
    let longer = key.assertion(&authlib_claims(&app, "jti-two-hours", 7200));
    assert_eq!(oauth_error(with_assertion(&app, &longer).await).await, (400, "invalid_client".into()));
}
