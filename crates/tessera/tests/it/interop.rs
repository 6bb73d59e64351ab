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

// ---- CORS, as Chromium speaks it ----

const SPA: &str = r#"
[[clients]]
client_id = "spa"
allowed_grant_types = ["authorization_code"]
require_client_secret = false
redirect_uris = ["http://localhost:3000/callback"]
allowed_scopes = ["openid", "api1.read"]
require_consent = false

[[clients]]
client_id = "partner"
allowed_grant_types = ["client_credentials"]
client_secrets = [{ value = "partner-secret" }]
allowed_scopes = ["api1.read"]
allowed_cors_origins = ["https://partner.example"]
"#;

/// A preflight exactly as Chromium sends it before a cross-origin form POST with a
/// DPoP header: `Origin`, `Access-Control-Request-Method`, lower-case sorted
/// `Access-Control-Request-Headers`, and the fetch metadata headers.
async fn chromium_preflight(app: &TestServer, path: &str, origin: &str, method: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, app.url(path))
        .header("Accept", "*/*")
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", "content-type,dpop")
        .header("Origin", origin)
        .header("Sec-Fetch-Mode", "cors")
        .header("Sec-Fetch-Site", "cross-site")
        .header("Sec-Fetch-Dest", "empty")
        .header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0")
        .send()
        .await
        .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|value| value.to_str().unwrap())
}

fn has_no_cors_headers(response: &reqwest::Response) -> bool {
    !response.headers().keys().any(|name| name.as_str().starts_with("access-control-"))
}

#[tokio::test]
async fn a_spa_on_localhost_passes_chromiums_preflight_and_reads_its_token_response() {
    let app = TestServer::spawn_with(SPA).await;
    let origin = "http://localhost:3000";
    let preflight = chromium_preflight(&app, "/token", origin, "POST").await;
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(header(&preflight, "access-control-allow-origin"), Some(origin));
    assert!(header(&preflight, "access-control-allow-methods").unwrap().contains("POST"));
    let allowed = header(&preflight, "access-control-allow-headers").unwrap().to_ascii_lowercase();
    assert!(allowed.contains("content-type") && allowed.contains("dpop"), "{allowed}");

    // The actual exchange, as the SPA's fetch() sends it.
    let (url, verifier) = authorization_url(&app, "spa", "http://localhost:3000/callback", "openid", &[]);
    let redirect = Browser::new(&app).authorize(&url, "alice", "alice-password-1").await;
    let code = query(&redirect, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "spa"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", "http://localhost:3000/callback"),
    ];
    let response =
        app.http.post(app.url("/token")).header("Origin", origin).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "access-control-allow-origin"), Some(origin));
    assert!(header(&response, "access-control-expose-headers").unwrap().contains("DPoP-Nonce"));
    assert!(header(&response, "vary").unwrap().contains("Origin"));
    // An error is readable too, so the SPA can show it.
    let response =
        app.http.post(app.url("/token")).header("Origin", origin).form(&form).send().await.unwrap();
    assert_eq!(header(&response, "access-control-allow-origin"), Some(origin));
    assert_eq!(oauth_error(response).await, (400, "invalid_grant".into()));
}

#[tokio::test]
async fn allowed_cors_origins_open_userinfo_revocation_and_device_authorization() {
    let app = TestServer::spawn_with(SPA).await;
    let origin = "https://partner.example";
    for (path, method) in
        [("/userinfo", "GET"), ("/userinfo", "POST"), ("/revoke", "POST"), ("/device_authorization", "POST")]
    {
        let preflight = chromium_preflight(&app, path, origin, method).await;
        assert!(preflight.status().is_success(), "{path}");
        assert_eq!(header(&preflight, "access-control-allow-origin"), Some(origin), "{path}");
        assert!(header(&preflight, "access-control-allow-methods").unwrap().contains(method), "{path}");
    }
    let response = app
        .http
        .post(app.url("/revoke"))
        .header("Origin", origin)
        .basic_auth("partner", Some("partner-secret"))
        .form(&[("token", "whatever")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "access-control-allow-origin"), Some(origin));
}

#[tokio::test]
async fn an_unknown_origin_gets_no_cors_headers() {
    let app = TestServer::spawn_with(SPA).await;
    let origin = "https://evil.example";
    let preflight = chromium_preflight(&app, "/token", origin, "POST").await;
    assert!(!preflight.status().is_success());
    assert!(has_no_cors_headers(&preflight));
    let response = app
        .http
        .post(app.url("/token"))
        .header("Origin", origin)
        .basic_auth("svc", Some("svc-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the request itself is served; the browser just cannot read it");
    assert!(has_no_cors_headers(&response));
    // A confidential client's redirect origin is no CORS origin.
    let preflight = chromium_preflight(&app, "/token", "https://web.example", "POST").await;
    assert!(has_no_cors_headers(&preflight));
}

#[tokio::test]
async fn discovery_and_jwks_are_readable_from_any_origin_but_pages_never() {
    let app = TestServer::spawn_with(SPA).await;
    let origin = "https://any-rp.example";
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/jwks"] {
        let response = app.http.get(app.url(path)).header("Origin", origin).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "access-control-allow-origin"), Some("*"), "{path}");
        let preflight = chromium_preflight(&app, path, origin, "GET").await;
        assert_eq!(header(&preflight, "access-control-allow-origin"), Some("*"), "{path}");
    }
    for (path, origin) in [
        ("/login", "http://localhost:3000"),
        ("/device", "http://localhost:3000"),
        ("/consent", "https://partner.example"),
        ("/authorize?client_id=spa", "http://localhost:3000"),
        ("/introspect", "https://partner.example"),
    ] {
        let response = app.http.get(app.url(path)).header("Origin", origin).send().await.unwrap();
        assert!(has_no_cors_headers(&response), "{path}");
        let preflight = chromium_preflight(&app, path, origin, "POST").await;
        assert!(has_no_cors_headers(&preflight), "{path}");
    }
}

// ---- RFC 8414 §3.1: an issuer with a path ----

#[tokio::test]
async fn an_issuer_with_a_path_serves_metadata_at_the_inserted_and_appended_well_known_urls() {
    let issuer = "https://id.example.com/tenant";
    let app = TestServer::spawn_with_env("", &[("TESSERA__ISSUER", issuer)]).await;
    for path in [
        "/.well-known/oauth-authorization-server/tenant",
        "/tenant/.well-known/oauth-authorization-server",
        "/tenant/.well-known/openid-configuration",
        "/.well-known/openid-configuration/tenant",
    ] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let metadata: Value = response.json().await.unwrap();
        // RFC 8414 §3.3: the issuer in the document is exactly the one configured.
        assert_eq!(metadata["issuer"], issuer, "{path}");
        assert_eq!(metadata["token_endpoint"], format!("{issuer}/token"), "{path}");
    }
    let bare = app.http.get(app.url("/.well-known/oauth-authorization-server")).send().await.unwrap();
    assert_eq!(bare.status(), 404, "not the metadata of another issuer on this host");
    let response = app
        .http
        .post(app.url("/tenant/token"))
        .basic_auth("svc", Some("svc-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "endpoints live under the issuer's path");
}

// ---- FAPI 2.0 §5.3.2.1: refresh without rotation ----

const FAPI: &str = r#"
[[clients]]
client_id = "fapi"
allowed_grant_types = ["authorization_code"]
client_secrets = [{ value = "fapi-secret" }]
redirect_uris = ["https://fapi.example/cb"]
allowed_scopes = ["openid", "api1.read"]
allow_offline_access = true
require_consent = false
refresh_token_rotation = false
"#;

#[tokio::test]
async fn a_client_without_rotation_reuses_its_refresh_token_as_the_fapi_plan_does() {
    let app = TestServer::spawn_with(FAPI).await;
    let client = BasicClient::new(ClientId::new("fapi".into()))
        .set_client_secret(ClientSecret::new("fapi-secret".into()))
        .set_token_uri(app.token_url());
    let (url, verifier) =
        authorization_url(&app, "fapi", "https://fapi.example/cb", "openid api1.read offline_access", &[]);
    let code = query(&Browser::new(&app).authorize(&url, "alice", "alice-password-1").await, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", "https://fapi.example/cb"),
    ];
    let tokens: Value =
        app.post_form("/token", Some(("fapi", "fapi-secret")), &form).await.json().await.unwrap();
    let refresh_token = oauth2::RefreshToken::new(tokens["refresh_token"].as_str().unwrap().to_owned());
    let mut access_tokens = Vec::new();
    for _ in 0..3 {
        let refreshed =
            client.exchange_refresh_token(&refresh_token).request_async(&app.http).await.expect("reuse");
        let same = oauth2::TokenResponse::refresh_token(&refreshed).map(|token| token.secret().clone());
        assert_eq!(same.as_deref(), Some(refresh_token.secret().as_str()), "the same refresh token again");
        access_tokens.push(oauth2::TokenResponse::access_token(&refreshed).secret().clone());
        // The conformance suite retries a used refresh token after 30 s.
        app.clock.advance(30);
    }
    for access in &access_tokens {
        assert_eq!(app.verify_jwt(access).await["sub"], "alice-sub");
    }
    // Revocation still ends it.
    let response =
        app.post_form("/revoke", Some(("fapi", "fapi-secret")), &[("token", refresh_token.secret())]).await;
    assert_eq!(response.status(), 200);
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.secret().as_str())];
    let response = app.post_form("/token", Some(("fapi", "fapi-secret")), &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_grant".into()));
}

#[tokio::test]
async fn a_rotating_client_beside_it_still_has_reuse_detection() {
    let app = TestServer::spawn_with(FAPI).await;
    let tokens = crate::code_flow::web_tokens(&app, &mut Browser::new(&app), "openid offline_access").await;
    let first = tokens["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", first)];
    let rotated: Value =
        app.post_form("/token", Some(("web", "web-secret")), &form).await.json().await.unwrap();
    let successor = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(successor, first);
    let reuse = app.post_form("/token", Some(("web", "web-secret")), &form).await;
    assert_eq!(oauth_error(reuse).await, (400, "invalid_grant".into()));
    let form = [("grant_type", "refresh_token"), ("refresh_token", successor)];
    let after = app.post_form("/token", Some(("web", "web-secret")), &form).await;
    assert_eq!(oauth_error(after).await, (400, "invalid_grant".into()), "the family was revoked");
}

// ---- RFC 8628: back from sign-in, straight to Approve or Deny ----

#[tokio::test]
async fn signing_in_from_the_device_page_goes_straight_to_approve_or_deny() {
    let app = TestServer::spawn_with(crate::device_flow::TV).await;
    let started = crate::device_flow::start(&app, "openid").await;
    let mut browser = Browser::new(&app);
    let entry = browser.open(started["verification_uri_complete"].as_str().unwrap()).await;
    let code = entry.input("user_code").unwrap();
    let csrf = entry.input("csrf_token").unwrap();
    let login = browser.post("/device", &[("csrf_token", csrf.as_str()), ("user_code", code.as_str())]).await;
    assert_eq!(login.status, 303, "not signed in: off to sign in");
    let login = browser.follow(login).await;
    let page = browser.sign_in(&login, "alice", "alice-password-1").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Living Room TV"), "{}", page.body);
    assert!(page.body.contains(">Approve<") && page.body.contains(">Deny<"), "{}", page.body);
    let csrf = page.input("csrf_token").unwrap();
    let code = page.input("user_code").unwrap();
    let done = browser
        .post(
            "/device/decision",
            &[("csrf_token", csrf.as_str()), ("user_code", code.as_str()), ("decision", "deny")],
        )
        .await;
    assert!(done.body.contains("Request denied"), "{}", done.body);
    let poll = crate::device_flow::poll(&app, started["device_code"].as_str().unwrap()).await;
    assert_eq!(oauth_error(poll).await, (400, "access_denied".into()));
}

#[tokio::test]
async fn the_return_from_sign_in_is_no_way_around_the_wrong_code_limit() {
    let app = TestServer::spawn_with(crate::device_flow::TV).await;
    let mut browser = Browser::new(&app);
    let login = browser.open("/login").await;
    browser.sign_in(&login, "alice", "alice-password-1").await;
    let mut last = 0;
    for _ in 0..=tessera_core::device::MAX_USER_CODE_ATTEMPTS {
        last = browser.get("/device?user_code=BBBB-BBBB&after_sign_in=1").await.status;
    }
    assert_eq!(last, 429, "wrong codes through the return path count too");
}

// ---- OpenID Connect Discovery §3: RS256 ID tokens ----

const RSA_RP: &str = r#"
[[clients]]
client_id = "rsa-rp"
allowed_grant_types = ["authorization_code"]
client_secrets = [{ value = "rsa-rp-secret" }]
redirect_uris = ["https://rsa-rp.example/cb"]
allowed_scopes = ["openid", "profile", "api1.read"]
require_consent = false
id_token_signed_response_alg = "RS256"
access_token_signing_alg = "RS256"
"#;

#[tokio::test]
async fn a_relying_party_that_only_verifies_rs256_gets_rs256_id_tokens() {
    use openidconnect::core::{
        CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    };
    use openidconnect::{IssuerUrl, Nonce, RedirectUrl, TokenResponse};

    let app = TestServer::spawn_with(RSA_RP).await;
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer.clone()).unwrap(), &app.http)
            .await
            .expect("discovery");
    let algs = metadata.id_token_signing_alg_values_supported();
    assert!(algs.contains(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256), "Discovery §3: {algs:?}");
    let client = CoreClient::from_provider_metadata(
        metadata,
        openidconnect::ClientId::new("rsa-rp".into()),
        Some(openidconnect::ClientSecret::new("rsa-rp-secret".into())),
    )
    .set_redirect_uri(RedirectUrl::new("https://rsa-rp.example/cb".into()).unwrap());
    let (challenge, verifier) = openidconnect::PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            openidconnect::CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let redirect = Browser::new(&app).authorize(url.as_str(), "alice", "alice-password-1").await;
    let token = client
        .exchange_code(openidconnect::AuthorizationCode::new(query(&redirect, "code").unwrap()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&app.http)
        .await
        .expect("token response");
    let id_token = token.id_token().unwrap();
    // An RP that accepts RS256 and nothing else.
    let rs256_only =
        client.id_token_verifier().set_allowed_algs(vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
    let claims = id_token.claims(&rs256_only, &nonce).expect("an RS256 ID token that verifies");
    assert_eq!(claims.subject().as_str(), "alice-sub");
    assert_eq!(id_token.signing_alg().unwrap(), &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
    let access = openidconnect::OAuth2TokenResponse::access_token(&token).secret();
    assert_eq!(jsonwebtoken::decode_header(access).unwrap().alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(app.verify_jwt(access).await["sub"], "alice-sub");
}

#[tokio::test]
async fn clients_without_a_choice_keep_the_default_es256_key() {
    let app = TestServer::spawn_with(RSA_RP).await;
    let tokens = crate::code_flow::web_tokens(&app, &mut Browser::new(&app), "openid").await;
    for token in [&tokens["id_token"], &tokens["access_token"], &app.svc_token(&[]).await["access_token"]] {
        let header = jsonwebtoken::decode_header(token.as_str().unwrap()).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    }
    let metadata = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(metadata["id_token_signing_alg_values_supported"], json!(["ES256", "RS256"]));
    assert_eq!(metadata["access_token_signing_alg_values_supported"], json!(["ES256", "RS256"]));
}
