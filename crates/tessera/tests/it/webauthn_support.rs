//! Passkeys in the browser: chromedriver's virtual authenticator (the W3C WebAuthn
//! extension commands, WebAuthn L2 §11.3) driven through fantoccini, and a proof that
//! it works: a registration, a username-less sign-in and a second factor, in Chromium, through
//! `assets/passkeys.js` and `tessera_core::passkeys`, on a tiny page of its own.
//!
//! Browsers refuse WebAuthn on IP-literal origins, so the page is `http://localhost:PORT`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use tessera_core::passkeys::{Passkeys, StoredPasskey, derive_user_handle};
use url::Url;

use crate::chromium::{PAGE_WAIT, in_chromium};

/// A W3C WebAuthn extension command for the current session.
#[derive(Debug)]
struct WebAuthnCommand {
    /// After `/session/{id}/webauthn/`.
    path: String,
    method: Method,
    body: Option<Value>,
}

impl WebDriverCompatibleCommand for WebAuthnCommand {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/webauthn/{}", self.path))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (Method, Option<String>) {
        (self.method.clone(), self.body.as_ref().map(Value::to_string))
    }
}

/// Adds a CTAP2 platform authenticator that holds discoverable credentials, verifies the
/// user and answers without a touch; returns its `authenticatorId`.
pub(crate) async fn add_virtual_authenticator(client: &Client) -> String {
    let options = json!({
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": true,
        "hasUserVerification": true,
        "isUserVerified": true,
        "automaticPresenceSimulation": true,
    });
    let command = WebAuthnCommand { path: "authenticator".into(), method: Method::POST, body: Some(options) };
    let id = client.issue_cmd(command).await.expect("virtual authenticator");
    id.as_str().unwrap_or_else(|| panic!("no authenticatorId in {id}")).to_owned()
}

/// The credentials the virtual authenticator holds: `[{credentialId, isResidentCredential,
/// rpId, userHandle, signCount, ...}]`, binary fields in base64url.
pub(crate) async fn credentials(client: &Client, authenticator_id: &str) -> Value {
    let command = WebAuthnCommand {
        path: format!("authenticator/{authenticator_id}/credentials"),
        method: Method::GET,
        body: None,
    };
    client.issue_cmd(command).await.expect("virtual authenticator credentials")
}

/// The page's CSP: as Tessera's pages, plus `connect-src 'self'` for the script's POSTs.
fn page(body: &str, nonce: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><title>Passkeys</title>\
         <script src=\"/assets/passkeys.js\" nonce=\"{nonce}\"></script></head><body>{body}\
         <script nonce=\"{nonce}\" src=\"/assets/fixed.js\"></script></body></html>"
    );
    let mut response = Html(html).into_response();
    let csp = format!(
        "default-src 'none'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
         script-src 'nonce-{nonce}'"
    );
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(&csp).unwrap());
    response
}

fn script(source: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], source).into_response()
}

/// `navigator.credentials.create` with fixed options; the outcome lands in `#result`.
const FIXED_CREATE: &str = r#"
document.getElementById("create").addEventListener("click", function () {
  const bytes = function (text) { return new TextEncoder().encode(text); };
  navigator.credentials.create({ publicKey: {
    rp: { id: "localhost", name: "Fixed" },
    user: { id: bytes("fixed-user-handle"), name: "fixed", displayName: "Fixed" },
    challenge: bytes("a fixed challenge of some length"),
    pubKeyCredParams: [{ type: "public-key", alg: -7 }],
    authenticatorSelection: { residentKey: "required", userVerification: "required" },
  } }).then(function (credential) {
    document.getElementById("result").textContent = "created " + credential.type;
  }, function (error) {
    document.getElementById("result").textContent = "failed " + error.name + ": " + error.message;
  });
});
"#;

/// What the test server keeps between a ceremony's halves, and the registered passkeys.
#[derive(Default)]
struct Ceremonies {
    state: Option<String>,
    passkeys: Vec<StoredPasskey>,
    signed_in: Option<String>,
}

#[derive(Clone)]
struct Rp {
    passkeys: Arc<Passkeys>,
    ceremonies: Arc<Mutex<Ceremonies>>,
}

const USER_HANDLE_KEY: &[u8] = b"test user handle key";

#[derive(serde::Deserialize)]
struct Finish {
    csrf_token: String,
    ceremony: String,
    response: String,
    name: Option<String>,
}

type CsrfForm = Form<Vec<(String, String)>>;

async fn options(State(rp): State<Rp>, Form(form): CsrfForm, kind: &str) -> Response {
    assert_eq!(form, [("csrf_token".to_owned(), "csrf-1".to_owned())]);
    let mut ceremonies = rp.ceremonies.lock().unwrap();
    let (options, state) = if kind == "register" {
        let handle = derive_user_handle(USER_HANDLE_KEY, "alice");
        rp.passkeys.start_registration(&handle, "alice", "Alice", &ceremonies.passkeys).unwrap()
    } else if kind == "second-factor" {
        rp.passkeys.start_second_factor(&ceremonies.passkeys).unwrap()
    } else {
        rp.passkeys.start_sign_in().unwrap()
    };
    ceremonies.state = Some(state);
    axum::Json(json!({ "ceremony": kind, "options": options })).into_response()
}

async fn finish(State(rp): State<Rp>, Form(form): Form<Finish>) -> Response {
    assert_eq!(form.csrf_token, "csrf-1");
    let response: Value = serde_json::from_str(&form.response).unwrap();
    let mut ceremonies = rp.ceremonies.lock().unwrap();
    let state = ceremonies.state.take().expect("a ceremony was started");
    if form.ceremony == "register" {
        let name = form.name.as_deref().unwrap_or("unnamed");
        let stored = rp.passkeys.finish_registration(&state, &response, name, 1_700_000_000).unwrap();
        ceremonies.passkeys.push(stored);
        return axum::Json(json!({ "redirect": "/registered" })).into_response();
    }
    let signed_in = if form.ceremony == "second-factor" {
        rp.passkeys.finish_second_factor(&state, &response, &ceremonies.passkeys).unwrap()
    } else {
        let (handle, credential_id) = Passkeys::user_handle_of(&response).unwrap();
        assert_eq!(handle, derive_user_handle(USER_HANDLE_KEY, "alice"));
        let signed_in = rp.passkeys.finish_sign_in(&state, &response, &ceremonies.passkeys).unwrap();
        assert_eq!(signed_in.credential_id, credential_id);
        signed_in
    };
    assert!(signed_in.user_verified);
    // The virtual authenticator counts signatures: each use moves the stored counter on.
    let updated = signed_in.updated.expect("the signature counter moved on");
    assert_ne!(Some(&updated), ceremonies.passkeys.first());
    ceremonies.passkeys = vec![updated];
    ceremonies.signed_in = Some(format!("alice by {}", form.ceremony));
    axum::Json(json!({ "redirect": "/signed-in" })).into_response()
}

/// Serves the fixed-options page and the passkey pages on `http://localhost:PORT`.
async fn serve_pages() -> (Url, Rp) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = Url::parse(&format!("http://localhost:{}", listener.local_addr().unwrap().port())).unwrap();
    let rp = Rp {
        passkeys: Arc::new(Passkeys::new("localhost", &origin, "Tessera test").unwrap()),
        ceremonies: Arc::default(),
    };
    let app = Router::new()
        .route(
            "/fixed",
            get(|| async { page(r#"<button id="create">Create</button><p id="result"></p>"#, "n0nce") }),
        )
        .route("/assets/fixed.js", get(|| async { script(FIXED_CREATE) }))
        .route(
            "/assets/passkeys.js",
            get(|| async { script(include_str!("../../../tessera-http/assets/passkeys.js")) }),
        )
        .route(
            "/passkeys",
            get(|| async {
                page(
                    r#"<h1>Passkeys</h1>
                    <form><input type="hidden" name="csrf_token" value="csrf-1">
                    <label for="name">Name</label><input id="name" name="name" value="Laptop">
                    <button type="button" data-passkey="register" data-options-url="/register/options"
                      data-finish-url="/finish">Add a passkey</button></form>
                    <form><input type="hidden" name="csrf_token" value="csrf-1">
                    <button type="button" data-passkey="sign-in" data-options-url="/sign-in/options"
                      data-finish-url="/finish">Sign in with a passkey</button>
                    <p data-passkey-error hidden></p></form>
                    <form><input type="hidden" name="csrf_token" value="csrf-1">
                    <button type="button" data-passkey="second-factor"
                      data-options-url="/second-factor/options" data-finish-url="/finish">
                      Use your passkey</button></form>"#,
                    "n0nce",
                )
            }),
        )
        .route("/register/options", post(|rp: State<Rp>, form: CsrfForm| options(rp, form, "register")))
        .route("/sign-in/options", post(|rp: State<Rp>, form: CsrfForm| options(rp, form, "sign-in")))
        .route(
            "/second-factor/options",
            post(|rp: State<Rp>, form: CsrfForm| options(rp, form, "second-factor")),
        )
        .route("/finish", post(finish))
        .route("/registered", get(|| async { Html("<h1>Registered</h1>") }))
        .route("/signed-in", get(|| async { Html("<h1>Signed in</h1>") }))
        .with_state(rp.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (origin, rp)
}

async fn wait_for_text(client: &Client, css: &str) -> String {
    let element = client.wait().at_most(PAGE_WAIT).for_element(Locator::Css(css)).await.unwrap();
    for _ in 0..200 {
        let text = element.text().await.unwrap();
        if !text.is_empty() {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{css} stayed empty")
}

async fn wait_for_heading(client: &Client, heading: &str) {
    let found = client
        .wait()
        .at_most(PAGE_WAIT)
        .for_element(Locator::XPath(&format!("//h1[normalize-space()='{heading}']")))
        .await;
    if found.is_err() {
        let source = client.source().await.unwrap_or_default();
        panic!("no page {heading:?}:\n{source}");
    }
}

#[tokio::test]
async fn webauthn_support_virtual_authenticator_creates_a_credential() {
    let (origin, _) = serve_pages().await;
    in_chromium(move |client| async move {
        let authenticator = add_virtual_authenticator(&client).await;
        assert_eq!(credentials(&client, &authenticator).await, json!([]));
        client.goto(origin.join("/fixed").unwrap().as_str()).await.unwrap();
        client.find(Locator::Id("create")).await.unwrap().click().await.unwrap();
        assert_eq!(wait_for_text(&client, "#result").await, "created public-key");
        let held = credentials(&client, &authenticator).await;
        assert_eq!(held.as_array().map(Vec::len), Some(1), "{held}");
        assert_eq!(held[0]["rpId"], "localhost");
        assert_eq!(held[0]["isResidentCredential"], true);
    })
    .await;
}

#[tokio::test]
async fn webauthn_support_passkey_registers_then_signs_in_without_a_username_then_as_second_factor() {
    let (origin, rp) = serve_pages().await;
    let ceremonies = rp.ceremonies.clone();
    in_chromium(move |client| async move {
        let authenticator = add_virtual_authenticator(&client).await;
        let passkeys_page = origin.join("/passkeys").unwrap();
        client.goto(passkeys_page.as_str()).await.unwrap();
        client.find(Locator::Css(r#"[data-passkey="register"]"#)).await.unwrap().click().await.unwrap();
        wait_for_heading(&client, "Registered").await;

        let held = credentials(&client, &authenticator).await;
        assert_eq!(held.as_array().map(Vec::len), Some(1), "{held}");
        assert_eq!(held[0]["isResidentCredential"], true, "{held}");
        let stored = ceremonies.lock().unwrap().passkeys.clone();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].name, "Laptop");
        assert_eq!(stored[0].amr(), "hwk"); // Chrome's virtual authenticator is not backup eligible

        client.goto(passkeys_page.as_str()).await.unwrap();
        client.find(Locator::Css(r#"[data-passkey="sign-in"]"#)).await.unwrap().click().await.unwrap();
        wait_for_heading(&client, "Signed in").await;
        assert_eq!(ceremonies.lock().unwrap().signed_in.as_deref(), Some("alice by sign-in"));

        client.goto(passkeys_page.as_str()).await.unwrap();
        client.find(Locator::Css(r#"[data-passkey="second-factor"]"#)).await.unwrap().click().await.unwrap();
        wait_for_heading(&client, "Signed in").await;
        assert_eq!(ceremonies.lock().unwrap().signed_in.as_deref(), Some("alice by second-factor"));
    })
    .await;
}
