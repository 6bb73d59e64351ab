//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document): an
//! MCP client names the URL of its document as `client_id`; the document is served
//! here on loopback (`allow_http_loopback = true`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::browser::{Browser, query};
use crate::support::TestServer;

const CONFIG: &str = r#"
[[api_scopes]]
name = "mcp:tools"
[[api_resources]]
name = "https://mcp.example/mcp"
scopes = ["mcp:tools"]

[client_id_metadata_documents]
enabled = true
allow_http_loopback = true
allowed_scopes = ["openid", "profile", "mcp:tools"]
"#;

/// A document and the `Cache-Control` it is served with.
type Served = (Value, Option<&'static str>);

/// Serves `documents` by path (`/{name}`), counting requests per path; `big` is an
/// endless-looking body.
#[derive(Clone, Default)]
struct Host {
    documents: Arc<std::sync::Mutex<HashMap<String, Served>>>,
    hits: Arc<std::sync::Mutex<HashMap<String, usize>>>,
    total: Arc<AtomicUsize>,
}

async fn serve(State(host): State<Host>, Path(name): Path<String>) -> Response {
    host.total.fetch_add(1, Ordering::SeqCst);
    *host.hits.lock().unwrap().entry(name.clone()).or_default() += 1;
    if name == "big.json" {
        return (StatusCode::OK, "x".repeat(64 * 1024)).into_response();
    }
    let Some((document, cache)) = host.documents.lock().unwrap().get(&name).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = axum::Json(document).into_response();
    if let Some(cache) = cache {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    response
}

impl Host {
    async fn start() -> (Self, String) {
        let host = Self::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let app = axum::Router::new().route("/{name}", axum::routing::get(serve)).with_state(host.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (host, base)
    }

    fn put(&self, name: &str, document: Value, cache: Option<&'static str>) {
        self.documents.lock().unwrap().insert(name.to_owned(), (document, cache));
    }

    fn hits(&self, name: &str) -> usize {
        self.hits.lock().unwrap().get(name).copied().unwrap_or_default()
    }
}

fn document(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Agent From A Document",
        "client_uri": "https://agent.example",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "mcp:tools"
    })
}

#[tokio::test]
async fn a_client_named_by_its_document_url_signs_a_user_in_and_gets_a_token_for_its_resource() {
    let (host, base) = Host::start().await;
    let client_id = format!("{base}/client.json");
    host.put("client.json", document(&client_id), Some("max-age=600"));
    let app = TestServer::spawn_with(CONFIG).await;
    let metadata = app.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(metadata["client_id_metadata_document_supported"], true);

    let redirect_uri = "http://127.0.0.1:49152/callback";
    let (url, verifier) = crate::code_flow::authorization_url(
        &app,
        &client_id,
        redirect_uri,
        "mcp:tools offline_access",
        &[("resource", "https://mcp.example/mcp")],
    );
    let mut browser = Browser::new(&app);
    let login = browser.open(&url).await;
    assert!(login.body.contains("name=\"password\""), "{}", login.body);
    let consent = browser.sign_in(&login, "alice", "alice-password-1").await;
    // The consent page says who vouches for the client and where the browser goes.
    assert!(consent.body.contains("not registered with this server"), "{}", consent.body);
    assert!(
        consent.body.contains(&format!("<strong>127.0.0.1:{}</strong>", base.rsplit(':').next().unwrap()))
            || consent.body.contains("<strong>127.0.0.1</strong>"),
        "{}",
        consent.body
    );
    assert!(consent.body.contains("Agent From A Document"));
    let done = browser.consent(&consent, "allow").await;
    let location = url::Url::parse(done.location.as_deref().unwrap()).unwrap();
    assert!(location.as_str().starts_with(redirect_uri));
    let code = query(&location, "code").unwrap();
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
    let claims = app.verify_jwt(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["aud"], "https://mcp.example/mcp");
    assert_eq!(claims["client_id"], client_id.as_str());
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form =
        [("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", client_id.as_str())];
    assert_eq!(app.post_form("/token", None, &form).await.status(), 200);
    // Cached by its max-age: one fetch for all of it.
    assert_eq!(host.hits("client.json"), 1);
}

#[tokio::test]
async fn a_mismatched_or_unacceptable_document_or_an_unlisted_redirect_ends_before_sign_in() {
    let (host, base) = Host::start().await;
    let app = TestServer::spawn_with(CONFIG).await;
    let mut other = document("https://someone-else.example/client.json");
    host.put("other.json", other.take(), None);
    let mut secret = document(&format!("{base}/secret.json"));
    secret["token_endpoint_auth_method"] = json!("client_secret_basic");
    host.put("secret.json", secret, None);
    let mut fragment = document(&format!("{base}/fragment.json"));
    fragment["redirect_uris"] = json!(["http://127.0.0.1/callback#x"]);
    host.put("fragment.json", fragment, None);
    let mut scope = document(&format!("{base}/scope.json"));
    scope["scope"] = json!("api1.read");
    host.put("scope.json", scope, None);
    host.put("good.json", document(&format!("{base}/good.json")), None);

    let cases = [
        (format!("{base}/other.json"), "http://127.0.0.1/callback", "client_id mismatch"),
        (format!("{base}/secret.json"), "http://127.0.0.1/callback", "a secret method"),
        (format!("{base}/fragment.json"), "http://127.0.0.1/callback", "a fragment"),
        (format!("{base}/scope.json"), "http://127.0.0.1/callback", "a scope not allowed"),
        (format!("{base}/missing.json"), "http://127.0.0.1/callback", "404"),
        (format!("{base}/big.json"), "http://127.0.0.1/callback", "too large"),
        (format!("{base}/good.json"), "http://127.0.0.1/elsewhere", "unlisted redirect"),
        (format!("{base}/good.json"), "https://evil.example/callback", "unlisted host"),
        (format!("{base}/../good.json"), "http://127.0.0.1/callback", "dot segment"),
        (
            base.replace("127.0.0.1", "2130706433") + "/good.json",
            "http://127.0.0.1/callback",
            "not canonical",
        ),
        (
            base.replace("127.0.0.1", "0x7f.0.0.1") + "/good.json",
            "http://127.0.0.1/callback",
            "not canonical",
        ),
        ("https://10.0.0.1/client.json".to_owned(), "http://127.0.0.1/callback", "private address"),
        (
            "https://169.254.169.254/latest/meta-data".to_owned(),
            "http://127.0.0.1/callback",
            "metadata service",
        ),
    ];
    for (client_id, redirect_uri, what) in cases {
        let (url, _) = crate::code_flow::authorization_url(&app, &client_id, redirect_uri, "mcp:tools", &[]);
        let mut browser = Browser::new(&app);
        let page = browser.get(&url).await;
        assert_eq!(page.status, 400, "{what}: {}", page.body);
        assert!(page.location.is_none(), "{what}: never redirected");
        assert!(!page.body.contains("name=\"password\""), "{what}: no sign-in");
    }
    // The private addresses were never asked: only the loopback host was.
    assert_eq!(host.total.load(Ordering::SeqCst), 6 + 1, "one fetch per loopback document");
}

#[tokio::test]
async fn forty_parallel_requests_naming_one_document_fetch_it_once_and_a_failure_is_remembered() {
    let (host, base) = Host::start().await;
    let app = Arc::new(TestServer::spawn_with(CONFIG).await);
    host.put("client.json", document(&format!("{base}/client.json")), Some("no-store"));
    for name in ["client.json", "missing.json"] {
        let client_id = format!("{base}/{name}");
        let requests = (0..40).map(|_| {
            let (app, client_id) = (app.clone(), client_id.clone());
            tokio::spawn(async move {
                let (url, _) = crate::code_flow::authorization_url(
                    &app,
                    &client_id,
                    "http://127.0.0.1/callback",
                    "mcp:tools",
                    &[],
                );
                app.http.get(url).send().await.unwrap().status().as_u16()
            })
        });
        for request in requests {
            request.await.unwrap();
        }
        assert_eq!(host.hits(name), 1, "{name}: one fetch for 40 requests");
    }
    // no-store is held to the least cache time, not refetched per request.
    app.clock.advance(30);
    let (url, _) = crate::code_flow::authorization_url(
        &app,
        &format!("{base}/client.json"),
        "http://127.0.0.1/callback",
        "mcp:tools",
        &[],
    );
    app.http.get(&url).send().await.unwrap();
    assert_eq!(host.hits("client.json"), 1);
    app.clock.advance(61);
    app.http.get(&url).send().await.unwrap();
    assert_eq!(host.hits("client.json"), 2, "fetched again after the least cache time");
}

#[tokio::test]
async fn without_the_section_a_url_client_id_is_an_unknown_client_and_http_needs_the_loopback_switch() {
    let (host, base) = Host::start().await;
    let client_id = format!("{base}/client.json");
    host.put("client.json", document(&client_id), None);
    let off = TestServer::spawn().await;
    assert!(
        off.get_json("/.well-known/openid-configuration")
            .await
            .get("client_id_metadata_document_supported")
            .is_none()
    );
    let strict =
        TestServer::spawn_with(&CONFIG.replace("allow_http_loopback = true", "allow_http_loopback = false"))
            .await;
    for app in [&off, &strict] {
        let (url, _) = crate::code_flow::authorization_url(
            app,
            &client_id,
            "http://127.0.0.1/callback",
            "mcp:tools",
            &[],
        );
        let page = Browser::new(app).get(&url).await;
        assert_eq!(page.status, 400);
    }
    assert_eq!(host.hits("client.json"), 0, "nothing fetched");
}
