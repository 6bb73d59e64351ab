//! Chromedriver's virtual authenticator (the W3C WebAuthn extension commands, WebAuthn
//! L2 §11.3) driven through fantoccini, for `passkeys_browser`.

use axum::http::Method;
use fantoccini::Client;
use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{Value, json};

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
