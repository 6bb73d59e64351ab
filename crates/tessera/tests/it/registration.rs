//! Dynamic Client Registration (RFC 7591) and its management (RFC 7592), as an MCP
//! client uses them: discover the registration endpoint, register, run the code flow
//! with PKCE for a `resource`, manage or delete the registration.

use serde_json::{Value, json};

use crate::browser::{Browser, query};
use crate::support::TestServer;

/// An MCP server as a resource (RFC 8707) and registration open for its scope.
const REGISTRATION: &str = r#"
[[api_scopes]]
name = "mcp:tools"
[[api_resources]]
name = "https://mcp.example/mcp"
scopes = ["mcp:tools"]

[registration]
enabled = true
allowed_scopes = ["openid", "profile", "mcp:tools"]
unused_client_lifetime = "1h"
"#;

async fn register(app: &TestServer, metadata: &Value) -> reqwest::Response {
    app.http.post(app.url("/register")).json(metadata).send().await.unwrap()
}

async fn registered(app: &TestServer, metadata: &Value) -> Value {
    let response = register(app, metadata).await;
    assert_eq!(response.status(), 201, "{metadata}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
        .unwrap()
}

/// Runs the code flow for `client_id` in `browser` (consent allowed) and returns the
/// code's redirect URI and verifier.
async fn authorize(
    app: &TestServer,
    browser: &mut Browser<'_>,
    client_id: &str,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> (String, String, bool) {
    let (url, verifier) = crate::code_flow::authorization_url(app, client_id, redirect_uri, "", extra);
    // No `scope`: the registered scopes apply (RFC 6749 §3.3).
    let url = url.replace("&scope=&", "&");
    let mut page = browser.open(&url).await;
    if page.body.contains("name=\"password\"") {
        page = browser.sign_in(&page, "alice", "alice-password-1").await;
    }
    let consented = page.body.contains("value=\"allow\"");
    if consented {
        page = browser.consent(&page, "allow").await;
    }
    let location =
        page.location.unwrap_or_else(|| panic!("no redirect; page ({}):\n{}", page.status, page.body));
    let location = url::Url::parse(&location).unwrap();
    assert!(location.as_str().starts_with(redirect_uri), "{location}");
    (query(&location, "code").expect("a code"), verifier, consented)
}

#[tokio::test]
async fn discovery_names_the_registration_endpoint_only_when_registration_is_on() {
    let off = TestServer::spawn().await;
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        assert!(off.get_json(path).await.get("registration_endpoint").is_none());
    }
    assert_eq!(register(&off, &json!({ "redirect_uris": ["https://a.example/cb"] })).await.status(), 404);
    let on = TestServer::spawn_with(REGISTRATION).await;
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        assert_eq!(on.get_json(path).await["registration_endpoint"], on.url("/register"));
    }
}

#[tokio::test]
async fn a_public_native_client_registers_and_gets_a_token_for_its_resource_on_any_loopback_port() {
    let app = TestServer::spawn_with(REGISTRATION).await;
    let body = registered(
        &app,
        &json!({
            "client_name": "Claude Code",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
            "scope": "mcp:tools",
            "some_extension": { "ignored": true }
        }),
    )
    .await;
    let client_id = body["client_id"].as_str().unwrap().to_owned();
    assert!(body.get("client_secret").is_none(), "a public client gets no secret: {body}");
    assert!(body["registration_access_token"].is_string());
    assert_eq!(body["registration_client_uri"], app.url(&format!("/register/{client_id}")));
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(body["scope"], "mcp:tools offline_access");
    assert!(body["client_id_issued_at"].is_i64());
    assert!(body.get("some_extension").is_none(), "unknown metadata is ignored");

    // Any port of the loopback host (RFC 8252 §7.3); the consent page shows up.
    let redirect_uri = "http://127.0.0.1:53682/callback";
    let mut browser = Browser::new(&app);
    let (code, verifier, consented) =
        authorize(&app, &mut browser, &client_id, redirect_uri, &[("resource", "https://mcp.example/mcp")])
            .await;
    assert!(consented, "a registered client gets the consent page");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", redirect_uri),
        ("client_id", client_id.as_str()),
    ];
    let response = app.post_form("/token", None, &form).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["aud"], "https://mcp.example/mcp", "{access}");
    assert_eq!(access["client_id"], client_id.as_str());
    let mut granted: Vec<&str> = tokens["scope"].as_str().unwrap().split(' ').collect();
    granted.sort_unstable();
    assert_eq!(granted, ["mcp:tools", "offline_access"], "the registered scopes, by default");

    // Refresh works for the public client.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form =
        [("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", client_id.as_str())];
    assert_eq!(app.post_form("/token", None, &form).await.status(), 200);

    // Consent is never remembered for a registered client.
    let (_, _, consented) = authorize(&app, &mut browser, &client_id, redirect_uri, &[]).await;
    assert!(consented, "asked again");
}

#[tokio::test]
async fn a_confidential_client_reads_replaces_and_deletes_its_registration() {
    let app = TestServer::spawn_with(REGISTRATION).await;
    let body = registered(
        &app,
        &json!({
            "client_name": "Web Agent",
            "redirect_uris": ["https://agent.example/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid mcp:tools",
            "contacts": ["ops@agent.example"],
            "logo_uri": "https://agent.example/logo.png"
        }),
    )
    .await;
    let client_id = body["client_id"].as_str().unwrap().to_owned();
    let secret = body["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(body["client_secret_expires_at"], 0);
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic", "RFC 7591 §2 default");
    let token = body["registration_access_token"].as_str().unwrap().to_owned();
    let uri = body["registration_client_uri"].as_str().unwrap().to_owned();

    // A code flow with the issued secret.
    let mut browser = Browser::new(&app);
    let (code, verifier, _) = authorize(
        &app,
        &mut browser,
        &client_id,
        "https://agent.example/cb",
        &[("resource", "https://mcp.example/mcp")],
    )
    .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", "https://agent.example/cb"),
    ];
    let response = app.post_form("/token", Some((&client_id, &secret)), &form).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    assert!(tokens["id_token"].is_string());
    assert_eq!(claims(tokens["access_token"].as_str().unwrap())["aud"], "https://mcp.example/mcp");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Read: the metadata, never the secret; a wrong or missing token is 401.
    let read = app.http.get(&uri).bearer_auth(&token).send().await.unwrap();
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["client_name"], "Web Agent");
    assert_eq!(read["contacts"], json!(["ops@agent.example"]));
    assert!(read.get("client_secret").is_none());
    for bearer in [Some("wrong"), None] {
        let mut request = app.http.get(&uri);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    }
    // Another client's token opens nothing.
    let other = registered(&app, &json!({ "redirect_uris": ["https://other.example/cb"] })).await;
    let response =
        app.http.get(&uri).bearer_auth(other["registration_access_token"].as_str().unwrap()).send();
    assert_eq!(response.await.unwrap().status(), 401);

    // Replace: the whole metadata; the token rotates, the secret stays.
    let mut replacement = read.clone();
    replacement["client_name"] = json!("Web Agent 2");
    replacement["redirect_uris"] = json!(["https://agent.example/cb2"]);
    let wrong_id = json!({ "client_id": "someone-else", "redirect_uris": ["https://agent.example/cb"] });
    let response = app.http.put(&uri).bearer_auth(&token).json(&wrong_id).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_client_metadata");
    let response = app.http.put(&uri).bearer_auth(&token).json(&replacement).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let replaced: Value = response.json().await.unwrap();
    assert_eq!(replaced["client_name"], "Web Agent 2");
    assert!(replaced.get("client_secret").is_none(), "the secret is kept, not shown");
    let new_token = replaced["registration_access_token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token);
    assert_eq!(
        app.http.get(&uri).bearer_auth(&token).send().await.unwrap().status(),
        401,
        "old token retired"
    );
    assert_eq!(app.http.get(&uri).bearer_auth(&new_token).send().await.unwrap().status(), 200);
    // The new redirect URI is the one that works now.
    let (url, _) =
        crate::code_flow::authorization_url(&app, &client_id, "https://agent.example/cb", "openid", &[]);
    let page = browser.get(&url).await;
    assert_eq!(page.status, 400, "the replaced redirect URI is gone");
    let (code, verifier, _) =
        authorize(&app, &mut browser, &client_id, "https://agent.example/cb2", &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", "https://agent.example/cb2"),
    ];
    assert_eq!(
        app.post_form("/token", Some((&client_id, &secret)), &form).await.status(),
        200,
        "same secret"
    );

    // Delete: 204; then the client, its token and its refresh tokens are gone.
    assert_eq!(app.http.delete(&uri).bearer_auth(&token).send().await.unwrap().status(), 401);
    assert_eq!(app.http.delete(&uri).bearer_auth(&new_token).send().await.unwrap().status(), 204);
    assert_eq!(app.http.get(&uri).bearer_auth(&new_token).send().await.unwrap().status(), 401);
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
    let response = app.post_form("/token", Some((&client_id, &secret)), &form).await;
    assert_eq!(response.status(), 401, "the deleted client cannot authenticate");
    let page = browser.get(&url).await;
    assert_eq!(page.status, 400, "nor authorize");
}

#[tokio::test]
async fn metadata_this_server_does_not_accept_is_refused_with_the_rfc_7591_error_and_registers_nothing() {
    let app = TestServer::spawn_with(REGISTRATION).await;
    let web = |uris: Value| json!({ "redirect_uris": uris });
    let cases = [
        (web(json!([])), "invalid_redirect_uri"),
        (json!({}), "invalid_redirect_uri"),
        (web(json!(["https://a.example/cb#frag"])), "invalid_redirect_uri"),
        (web(json!(["http://a.example/cb"])), "invalid_redirect_uri"),
        (web(json!(["/relative/cb"])), "invalid_redirect_uri"),
        (web(json!(["javascript:alert(1)"])), "invalid_redirect_uri"),
        (web(json!(["com.example.app:/cb"])), "invalid_redirect_uri"),
        (web(json!(["https://a.example/c b"])), "invalid_redirect_uri"),
        (web(json!(["https://a.example/cb\r\nX-Injected: y"])), "invalid_redirect_uri"),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "logo_uri": "https://a.example/\"x.png" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["data:text/html,x"], "application_type": "native" }),
            "invalid_redirect_uri",
        ),
        (json!({ "redirect_uris": "https://a.example/cb" }), "invalid_client_metadata"),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "grant_types": ["password"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "response_types": ["token"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_jwt" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://a.example/jwks" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks": { "keys": [{ "kty": "oct", "k": "c2VjcmV0" }] } }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "jwks_uri": "https://a.example/jwks", "jwks": { "keys": [] } }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "scope": "openid api1.read" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "application_type": "desktop" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "logo_uri": "javascript:alert(1)" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "client_name": "x\u{0}y" }),
            "invalid_client_metadata",
        ),
    ];
    for (metadata, error) in cases {
        let response = register(&app, &metadata).await;
        assert_eq!(response.status(), 400, "{metadata}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{metadata}: {body}");
        assert!(body["error_description"].is_string());
    }
    let not_json = app.http.post(app.url("/register")).body("redirect_uris=x").send().await.unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(not_json.json::<Value>().await.unwrap()["error"], "invalid_client_metadata");
    let stored = app.provider.store.client_sources().await.unwrap();
    assert!(
        stored.iter().all(|(_, source)| *source != tessera_core::store::Source::Dynamic),
        "nothing registered: {stored:?}"
    );
}

#[tokio::test]
async fn an_initial_access_token_guards_registration() {
    let config = REGISTRATION
        .replace("enabled = true", "enabled = true\ninitial_access_token = \"iat-0123456789abcdef\"");
    let app = TestServer::spawn_with(&config).await;
    let metadata = json!({ "redirect_uris": ["https://a.example/cb"] });
    for bearer in [None, Some("wrong-0123456789abcdef")] {
        let mut request = app.http.post(app.url("/register")).json(&metadata);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Bearer error=\"invalid_token\"");
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_token");
    }
    let response =
        app.http.post(app.url("/register")).bearer_auth("iat-0123456789abcdef").json(&metadata).send().await;
    assert_eq!(response.unwrap().status(), 201);
}

#[tokio::test]
async fn of_forty_parallel_registrations_from_one_address_twenty_succeed() {
    let app = std::sync::Arc::new(TestServer::spawn_with(REGISTRATION).await);
    let attempts = (0..40).map(|i| {
        let app = app.clone();
        tokio::spawn(async move {
            let response =
                register(&app, &json!({ "redirect_uris": [format!("https://a{i}.example/cb")] })).await;
            if response.status() == 503 {
                // The limit's window, not a store outage's few seconds (RFC 9110 §10.2.3).
                assert_eq!(response.headers()["retry-after"], "3600");
            }
            response.status().as_u16()
        })
    });
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    let count = |status: u16| statuses.iter().filter(|s| **s == status).count();
    assert_eq!(count(201), 20, "{statuses:?}");
    assert_eq!(count(503), 20, "{statuses:?}");
    let stored = app.provider.store.client_sources().await.unwrap();
    let dynamic = stored.iter().filter(|(_, source)| *source == tessera_core::store::Source::Dynamic).count();
    assert_eq!(dynamic, 20);
}

#[tokio::test]
async fn a_browser_client_may_register_from_any_origin() {
    let app = TestServer::spawn_with(REGISTRATION).await;
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/register"))
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert!(preflight.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let response = app
        .http
        .post(app.url("/register"))
        .header("origin", "http://localhost:6274")
        .json(&json!({ "redirect_uris": ["http://localhost:6274/oauth/callback"], "token_endpoint_auth_method": "none" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn a_registered_client_unused_for_its_lifetime_is_removed_and_a_used_one_kept() {
    let app = TestServer::spawn_with(REGISTRATION).await;
    let used = registered(&app, &json!({ "redirect_uris": ["https://used.example/cb"] })).await;
    let unused = registered(&app, &json!({ "redirect_uris": ["https://unused.example/cb"] })).await;
    let (used_id, used_secret) =
        (used["client_id"].as_str().unwrap(), used["client_secret"].as_str().unwrap());
    app.clock.advance(1800);
    let mut browser = Browser::new(&app);
    let (code, verifier, _) = authorize(&app, &mut browser, used_id, "https://used.example/cb", &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", "https://used.example/cb"),
    ];
    assert_eq!(app.post_form("/token", Some((used_id, used_secret)), &form).await.status(), 200);
    app.clock.advance(1860);
    tessera::upkeep::remove_unused_clients(&app.provider).await;
    let ids: Vec<String> =
        app.provider.store.client_sources().await.unwrap().into_iter().map(|(id, _)| id.0).collect();
    assert!(ids.iter().any(|id| id == used_id), "used within its lifetime: kept");
    assert!(!ids.iter().any(|id| id == unused["client_id"].as_str().unwrap()), "unused: removed");
    let uri = unused["registration_client_uri"].as_str().unwrap();
    let token = unused["registration_access_token"].as_str().unwrap();
    assert_eq!(app.http.get(uri).bearer_auth(token).send().await.unwrap().status(), 401);
}

/// Two instances on one PostgreSQL: a client registered on one works on the other,
/// and once deleted on one, the other refuses it within `client_cache_ttl`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_on_one_instance_is_seen_by_another_and_so_is_its_deletion() {
    let Ok(base_url) = std::env::var("TESSERA_TEST_POSTGRES") else {
        eprintln!("TESSERA_TEST_POSTGRES is not set: skipping the two-instance registration run");
        return;
    };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    let issuer = "https://tessera.example";
    let (a, b) = tokio::join!(
        TestServer::spawn_on_store_as(issuer, &schema.url, REGISTRATION),
        TestServer::spawn_on_store_as(issuer, &schema.url, REGISTRATION)
    );
    let body = registered(&a, &json!({ "redirect_uris": ["https://agent.example/cb"] })).await;
    let (client_id, secret) = (body["client_id"].as_str().unwrap(), body["client_secret"].as_str().unwrap());
    let mut browser = Browser::new(&b);
    let (code, verifier, _) = authorize(&b, &mut browser, client_id, "https://agent.example/cb", &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", "https://agent.example/cb"),
    ];
    assert_eq!(b.post_form("/token", Some((client_id, secret)), &form).await.status(), 200);

    let uri = a.url(&format!("/register/{client_id}"));
    let token = body["registration_access_token"].as_str().unwrap();
    assert_eq!(a.http.delete(&uri).bearer_auth(token).send().await.unwrap().status(), 204);
    b.clock.advance(31);
    let (url, _) =
        crate::code_flow::authorization_url(&b, client_id, "https://agent.example/cb", "openid", &[]);
    assert_eq!(browser.get(&url).await.status, 400, "the other instance no longer knows it");
    a.stop().await;
    b.stop().await;
    schema.drop().await;
}

/// The upkeep that removes unused clients runs on every instance, also while clients
/// register: none of them may be taken for unused (a client is written after its
/// record of use, never before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upkeep_running_beside_registrations_removes_none_of_them() {
    let app = std::sync::Arc::new(TestServer::spawn_with(REGISTRATION).await);
    let sweeper = {
        let app = app.clone();
        tokio::spawn(async move {
            for _ in 0..200 {
                tessera::upkeep::remove_unused_clients(&app.provider).await;
                tokio::task::yield_now().await;
            }
        })
    };
    let registrations: Vec<_> = (0..20)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                registered(&app, &json!({ "redirect_uris": [format!("https://r{i}.example/cb")] })).await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for registration in registrations {
        ids.push(registration.await.unwrap()["client_id"].as_str().unwrap().to_owned());
    }
    sweeper.await.unwrap();
    tessera::upkeep::remove_unused_clients(&app.provider).await;
    let stored: Vec<String> =
        app.provider.store.client_sources().await.unwrap().into_iter().map(|(id, _)| id.0).collect();
    for id in &ids {
        assert!(stored.contains(id), "{id} was removed though just registered");
    }
}

/// A browser-based client that registered itself (an MCP inspector on localhost) can
/// also read the token endpoint's answers; other unlisted origins still cannot, and
/// without registration a loopback origin needs a listing like any other.
#[tokio::test]
async fn a_self_registered_client_on_a_loopback_origin_may_call_the_token_endpoint_from_the_browser() {
    let preflight = |app: &TestServer, origin: &str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/token"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let app = TestServer::spawn_with(REGISTRATION).await;
    let allowed = preflight(&app, "http://localhost:6274").await.unwrap();
    assert_eq!(allowed.status(), 204);
    assert_eq!(allowed.headers()["access-control-allow-origin"], "http://localhost:6274");
    assert_eq!(preflight(&app, "https://evil.example").await.unwrap().status(), 403);
    let response = app
        .http
        .post(app.url("/token"))
        .header("origin", "http://127.0.0.1:6274")
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("code_verifier", "y"),
            ("client_id", "z"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://127.0.0.1:6274",
        "errors readable too"
    );

    let closed = TestServer::spawn().await;
    assert_eq!(preflight(&closed, "http://localhost:6274").await.unwrap().status(), 403);
}

/// A registered client's `jwks_uri` is fetched from public addresses only: naming an
/// internal one gets the client nowhere, and nothing connects there.
#[tokio::test]
async fn a_registered_clients_jwks_uri_on_a_private_address_is_never_fetched() {
    let app = TestServer::spawn_with(REGISTRATION).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    let key = crate::support::ClientKey::generate("k");
    for jwks_uri in [format!("https://127.0.0.1:{port}/jwks"), format!("https://localhost:{port}/jwks")] {
        let body = registered(
            &app,
            &json!({
                "redirect_uris": ["https://agent.example/cb"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": jwks_uri
            }),
        )
        .await;
        let client_id = body["client_id"].as_str().unwrap();
        let now = tessera_core::Clock::now(app.clock.as_ref());
        let assertion = key.assertion(
            &json!({ "iss": client_id, "sub": client_id, "aud": app.issuer, "exp": now + 60, "iat": now, "jti": jwks_uri }),
        );
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion.as_str()),
        ];
        let (status, error) = crate::support::oauth_error(app.post_form("/token", None, &form).await).await;
        assert_eq!((status, error.as_str()), (400, "invalid_client"), "{jwks_uri}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no connection to the internal address"
    );
}
