//! Passkeys in headless Chromium with chromedriver's virtual authenticator: registered on
//! `/account`, then signing in with the passkey alone (`Sign in with a passkey`), and as
//! the second step after a password (`Use a passkey`). WebAuthn needs a host name, so
//! the issuer is `http://localhost:PORT`.

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::Value;

use crate::chromium::{
    PAGE_WAIT, callback_server, click_button, field_labelled, in_chromium, jwt_claims, query_param, sign_in,
    wait_for_page,
};
use crate::code_flow::authorization_url;
use crate::support::TestServer;
use crate::webauthn_support::{add_virtual_authenticator, credentials};

/// Waits until the page's text holds `text`.
async fn wait_for_text(client: &Client, text: &str) -> String {
    let started = Instant::now();
    loop {
        // Mid-navigation the old page's body may be gone before the new one is there.
        let body = match client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if body.contains(text) {
            return body;
        }
        assert!(started.elapsed() < PAGE_WAIT, "no {text:?} on the page:\n{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The authorization URL on `localhost` (the issuer's host), not the loopback address.
fn on_localhost(app: &TestServer, url: &str) -> String {
    url.replacen(&app.base, &app.issuer, 1)
}

/// Exchanges the code the browser brought to `redirect_uri` for the ID token's claims.
async fn id_token_claims(app: &TestServer, landed: &url::Url, verifier: &str, redirect_uri: &str) -> Value {
    let code = query_param(landed, "code").expect("a code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier),
        ("redirect_uri", redirect_uri),
    ];
    let response = app.post_form("/token", Some(("browser", "browser-secret")), &form).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    jwt_claims(tokens["id_token"].as_str().expect("an ID token"))
}

#[tokio::test]
async fn chromium_adds_a_passkey_and_signs_in_with_it_alone_and_as_a_second_step() {
    in_chromium(|client| async move {
        let (redirect_uri, mut callbacks) = callback_server().await;
        let app = TestServer::spawn_with_env(
            &format!(
                "[[clients]]\nclient_id = \"browser\"\nclient_name = \"Browser App\"\n\
                 allowed_grant_types = [\"authorization_code\"]\nclient_secrets = [{{ value = \"browser-secret\" }}]\n\
                 redirect_uris = [\"{redirect_uri}\"]\nallowed_scopes = [\"openid\"]\nrequire_consent = false\n"
            ),
            &[("TESSERA__ISSUER", "http://localhost:{port}")],
        )
        .await;
        let authenticator = add_virtual_authenticator(&client).await;

        // Register a passkey on the account page.
        client.goto(&format!("{}/account", app.issuer)).await.unwrap();
        wait_for_page(&client, "Sign in").await;
        sign_in(&client, "alice", "alice-password-1").await;
        wait_for_page(&client, "Your account").await;
        field_labelled(&client, "Passkey name").await.send_keys("Test laptop").await.unwrap();
        click_button(&client, "Add a passkey").await;
        let account = wait_for_text(&client, "Your passkey was added").await;
        assert!(account.contains("Test laptop"), "{account}");
        let held = credentials(&client, &authenticator).await;
        assert_eq!(held.as_array().map(Vec::len), Some(1), "{held}");
        assert_eq!(held[0]["isResidentCredential"], true, "a discoverable credential");
        assert_eq!(held[0]["rpId"], "localhost");

        // Signed out: the passkey alone signs in (no username, no password).
        client.delete_all_cookies().await.unwrap();
        let (url, verifier) = authorization_url(&app, "browser", &redirect_uri, "openid", &[]);
        client.goto(&on_localhost(&app, &url)).await.unwrap();
        wait_for_page(&client, "Sign in").await;
        click_button(&client, "Sign in with a passkey").await;
        tokio::time::timeout(PAGE_WAIT, callbacks.recv()).await.expect("back at the client").unwrap();
        let landed = client.current_url().await.unwrap();
        let claims = id_token_claims(&app, &landed, &verifier, &redirect_uri).await;
        assert_eq!(claims["sub"], "alice-sub");
        assert_eq!(claims["amr"], serde_json::json!(["hwk", "user", "mfa"]), "{claims}");
        assert_eq!(claims["acr"], "phr");

        // Signed out again (cookies go per site: from the issuer's page): now the password
        // leads to a second step, passed with the passkey.
        client.goto(&format!("{}/login", app.issuer)).await.unwrap();
        client.delete_all_cookies().await.unwrap();
        let (url, verifier) = authorization_url(&app, "browser", &redirect_uri, "openid", &[("acr_values", "phr")]);
        client.goto(&on_localhost(&app, &url)).await.unwrap();
        wait_for_page(&client, "Sign in").await;
        sign_in(&client, "alice", "alice-password-1").await;
        wait_for_page(&client, "Second step").await;
        click_button(&client, "Use a passkey").await;
        tokio::time::timeout(PAGE_WAIT, callbacks.recv()).await.expect("back at the client").unwrap();
        let landed = client.current_url().await.unwrap();
        let claims = id_token_claims(&app, &landed, &verifier, &redirect_uri).await;
        assert_eq!(claims["amr"], serde_json::json!(["pwd", "hwk", "user", "mfa"]), "{claims}");
        assert_eq!(claims["acr"], "phr");
        let held = credentials(&client, &authenticator).await;
        assert!(held[0]["signCount"].as_u64().unwrap_or(0) >= 2, "each use counted: {held}");
        app.stop().await;
    })
    .await;
}
