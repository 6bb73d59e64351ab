//! CIBA (OpenID Connect Client-Initiated Backchannel Authentication Core 1.0): poll
//! and ping delivery, the `/approvals` page, the operator webhook, and refusals.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::Value;

use crate::browser::Browser;
use crate::support::{TestServer, oauth_error};

const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";

/// What the test's receiver got: path, `Authorization` header, JSON body.
type Received = Arc<Mutex<Vec<(String, Option<String>, Value)>>>;

/// A loopback HTTP server standing in for the client's notification endpoint and
/// the operator's webhook.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log = received.clone();
    let handler = move |uri: axum::http::Uri, headers: HeaderMap, body: axum::Json<Value>| {
        let log = log.clone();
        async move {
            let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
            log.lock().unwrap().push((uri.path().to_owned(), auth, body.0));
            axum::http::StatusCode::NO_CONTENT
        }
    };
    let router = axum::Router::new().route("/{*path}", axum::routing::post(handler));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, received)
}

fn clients(receiver: &str) -> String {
    format!(
        r#"
[[clients]]
client_id = "teller"
client_name = "Bank Teller"
allowed_grant_types = ["urn:openid:params:grant-type:ciba"]
client_secrets = [{{ value = "teller-secret" }}]
allowed_scopes = ["openid", "profile", "api1.read"]

[[clients]]
client_id = "pinged"
client_name = "Ping App"
allowed_grant_types = ["urn:openid:params:grant-type:ciba"]
client_secrets = [{{ value = "pinged-secret" }}]
allowed_scopes = ["openid"]
ciba_delivery_mode = "ping"
backchannel_client_notification_endpoint = "{receiver}/ping"

[ciba]
notification_webhook = "{receiver}/hook"
"#
    )
}

async fn ask(app: &TestServer, client: (&str, &str), form: &[(&str, &str)]) -> reqwest::Response {
    app.post_form("/bc-authorize", Some(client), form).await
}

async fn poll(app: &TestServer, client: (&str, &str), auth_req_id: &str) -> reqwest::Response {
    app.post_form("/token", Some(client), &[("grant_type", CIBA_GRANT), ("auth_req_id", auth_req_id)]).await
}

/// Signs `username` in and answers the first request on `/approvals`.
async fn answer(app: &TestServer, username: &str, password: &str, decision: &str) -> String {
    let mut browser = Browser::new(app);
    let login = browser.open("/approvals").await;
    let page = browser.sign_in(&login, username, password).await;
    assert!(page.body.contains("<h1>Approvals</h1>"), "{}", page.body);
    let csrf = page.input("csrf_token").unwrap();
    let request = page.input("request").expect("a pending request");
    let done = browser
        .post(
            "/approvals",
            &[("csrf_token", csrf.as_str()), ("request", request.as_str()), ("decision", decision)],
        )
        .await;
    assert_eq!(done.status, 303);
    page.body
}

async fn wait_for(received: &Received, path: &str) -> (Option<String>, Value) {
    for _ in 0..100 {
        if let Some((_, auth, body)) = received.lock().unwrap().iter().find(|(p, _, _)| p == path).cloned() {
            return (auth, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing arrived at {path}");
}

#[tokio::test]
async fn a_teller_asks_and_the_customer_approves_on_their_own_device() {
    let (hooks, received) = receiver().await;
    let app = TestServer::spawn_with(&clients(&hooks)).await;
    let form =
        [("scope", "openid profile"), ("login_hint", "alice"), ("binding_message", "Withdraw 100 EUR")];
    let response = ask(&app, ("teller", "teller-secret"), &form).await;
    assert_eq!(response.status(), 200);
    let started: Value = response.json().await.unwrap();
    let auth_req_id = started["auth_req_id"].as_str().unwrap().to_owned();
    assert_eq!((started["expires_in"].as_i64(), started["interval"].as_i64()), (Some(300), Some(5)));

    // The operator's webhook hears about it (to push it to a phone app).
    let (_, hook) = wait_for(&received, "/hook").await;
    assert_eq!(
        (hook["username"].as_str(), hook["binding_message"].as_str()),
        (Some("alice"), Some("Withdraw 100 EUR"))
    );
    assert_eq!(hook["approvals_uri"], app.url("/approvals"));

    let teller = ("teller", "teller-secret");
    assert_eq!(
        oauth_error(poll(&app, teller, &auth_req_id).await).await,
        (400, "authorization_pending".into())
    );
    let page = answer(&app, "alice", "alice-password-1", "approve").await;
    assert!(
        page.contains("Bank Teller") && page.contains("Withdraw 100 EUR"),
        "client and binding message shown"
    );

    app.clock.advance(5);
    let response = poll(&app, teller, &auth_req_id).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    assert!(tokens["id_token"].is_string());
    assert_eq!(app.verify_jwt(tokens["access_token"].as_str().unwrap()).await["sub"], "alice-sub");
    app.clock.advance(5);
    assert_eq!(
        oauth_error(poll(&app, teller, &auth_req_id).await).await,
        (400, "invalid_grant".into()),
        "once"
    );
}

#[tokio::test]
async fn ping_mode_tells_the_client_when_to_fetch_the_tokens() {
    let (hooks, received) = receiver().await;
    let app = TestServer::spawn_with(&clients(&hooks)).await;
    let pinged = ("pinged", "pinged-secret");
    let form = [("scope", "openid"), ("login_hint", "alice"), ("client_notification_token", "notify-me-123")];
    let started: Value = ask(&app, pinged, &form).await.json().await.unwrap();
    let auth_req_id = started["auth_req_id"].as_str().unwrap();
    answer(&app, "alice", "alice-password-1", "approve").await;
    let (authorization, body) = wait_for(&received, "/ping").await;
    assert_eq!(authorization.as_deref(), Some("Bearer notify-me-123"), "CIBA Core §10.2");
    assert_eq!(body["auth_req_id"], auth_req_id);
    assert_eq!(poll(&app, pinged, auth_req_id).await.status(), 200);

    let response = ask(&app, pinged, &[("scope", "openid"), ("login_hint", "alice")]).await;
    assert_eq!(
        oauth_error(response).await,
        (400, "invalid_request".into()),
        "ping needs client_notification_token"
    );
}

#[tokio::test]
async fn a_ping_mode_auth_req_id_is_never_stored_in_plaintext() {
    let (hooks, received) = receiver().await;
    let app = TestServer::spawn_with(&clients(&hooks)).await;
    let pinged = ("pinged", "pinged-secret");
    let form = [("scope", "openid"), ("login_hint", "alice"), ("client_notification_token", "notify-me-456")];
    let started: Value = ask(&app, pinged, &form).await.json().await.unwrap();
    let auth_req_id = started["auth_req_id"].as_str().unwrap().to_owned();
    let stored_text = async || {
        let now = tessera_core::Clock::now(app.clock.as_ref());
        let store = app.provider.store.as_ref();
        let mut stored = store.requests_with_prefix("", now).await.unwrap();
        // The request itself is in its own table, under the hash of its id.
        let key = format!("ciba:{}", tessera_core::model::ciba_request_id(&auth_req_id));
        let request = store.polled(&key, now).await.unwrap().expect("the request is stored");
        stored.push((key, request));
        stored.iter().map(|(key, document)| format!("{key} {document}")).collect::<Vec<_>>().join("\n")
    };
    assert!(!stored_text().await.contains(&auth_req_id), "auth_req_id stored in plaintext");
    answer(&app, "alice", "alice-password-1", "approve").await;
    assert!(!stored_text().await.contains(&auth_req_id), "auth_req_id stored in plaintext once decided");
    // The ping still names the request, and it redeems.
    let (_, body) = wait_for(&received, "/ping").await;
    assert_eq!(body["auth_req_id"], auth_req_id.as_str());
    assert_eq!(poll(&app, pinged, &auth_req_id).await.status(), 200);
}

#[tokio::test]
async fn denial_expiry_and_slow_polling_get_their_errors() {
    let (hooks, _) = receiver().await;
    let app = TestServer::spawn_with(&clients(&hooks)).await;
    let teller = ("teller", "teller-secret");
    let started: Value =
        ask(&app, teller, &[("scope", "openid"), ("login_hint", "alice")]).await.json().await.unwrap();
    let denied = started["auth_req_id"].as_str().unwrap().to_owned();
    answer(&app, "alice", "alice-password-1", "deny").await;
    assert_eq!(oauth_error(poll(&app, teller, &denied).await).await, (400, "access_denied".into()));

    let form = [("scope", "openid"), ("login_hint", "alice"), ("requested_expiry", "60")];
    let started: Value = ask(&app, teller, &form).await.json().await.unwrap();
    assert_eq!(started["expires_in"], 60);
    let id = started["auth_req_id"].as_str().unwrap().to_owned();
    assert_eq!(oauth_error(poll(&app, teller, &id).await).await.1, "authorization_pending");
    assert_eq!(oauth_error(poll(&app, teller, &id).await).await.1, "slow_down");
    app.clock.advance(61);
    assert_eq!(oauth_error(poll(&app, teller, &id).await).await, (400, "expired_token".into()));
}

/// A refused request: what it tries, its form, and the expected `error`.
type Refusal<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

#[tokio::test]
async fn bad_requests_get_the_ciba_errors() {
    let (hooks, _) = receiver().await;
    let app = TestServer::spawn_with(&clients(&hooks)).await;
    let teller = ("teller", "teller-secret");
    let cases: [Refusal; 6] = [
        ("unknown user", &[("scope", "openid"), ("login_hint", "mallory")], "unknown_user_id"),
        ("no hint", &[("scope", "openid")], "invalid_request"),
        ("no openid", &[("scope", "api1.read"), ("login_hint", "alice")], "invalid_scope"),
        (
            "bad expiry",
            &[("scope", "openid"), ("login_hint", "alice"), ("requested_expiry", "soon")],
            "invalid_request",
        ),
        (
            "long binding message",
            &[("scope", "openid"), ("login_hint", "alice"), ("binding_message", &"x".repeat(101))],
            "invalid_binding_message",
        ),
        (
            "two hints",
            &[("scope", "openid"), ("login_hint", "alice"), ("id_token_hint", "x")],
            "invalid_request",
        ),
    ];
    for (case, form, expected) in cases {
        assert_eq!(oauth_error(ask(&app, teller, form).await).await, (400, expected.to_owned()), "{case}");
    }
    let response = ask(&app, ("svc", "svc-secret"), &[("scope", "openid"), ("login_hint", "alice")]).await;
    assert_eq!(oauth_error(response).await, (400, "unauthorized_client".into()));
    let response = ask(&app, ("teller", "wrong"), &[("scope", "openid"), ("login_hint", "alice")]).await;
    assert_eq!(oauth_error(response).await, (401, "invalid_client".into()));
}

#[tokio::test]
async fn only_the_named_user_sees_and_answers_a_request() {
    let (hooks, _) = receiver().await;
    let app = TestServer::spawn_with(&clients(&hooks)).await;
    let teller = ("teller", "teller-secret");
    let started: Value =
        ask(&app, teller, &[("scope", "openid"), ("login_hint", "alice")]).await.json().await.unwrap();
    let mut bob = Browser::new(&app);
    let login = bob.open("/approvals").await;
    let page = bob.sign_in(&login, "bob", "bob-password-1").await;
    assert!(page.body.contains("Nothing is waiting"), "bob sees nothing of alice's");
    // Even with alice's request id, bob cannot answer it.
    let mut alice = Browser::new(&app);
    let login = alice.open("/approvals").await;
    let alice_page = alice.sign_in(&login, "alice", "alice-password-1").await;
    let id = alice_page.input("request").unwrap();
    // A valid CSRF token of bob's own (from any of his forms).
    let csrf = bob.open("/device").await.input("csrf_token").unwrap();
    let forged = bob
        .post(
            "/approvals",
            &[("csrf_token", csrf.as_str()), ("request", id.as_str()), ("decision", "approve")],
        )
        .await;
    assert_eq!(forged.status, 400);
    let auth_req_id = started["auth_req_id"].as_str().unwrap();
    assert_eq!(oauth_error(poll(&app, teller, auth_req_id).await).await.1, "authorization_pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_racing_polls_redeem_an_approved_request_once() {
    let (hooks, _) = receiver().await;
    let app = Arc::new(TestServer::spawn_with(&clients(&hooks)).await);
    let teller = ("teller", "teller-secret");
    let started: Value =
        ask(&app, teller, &[("scope", "openid"), ("login_hint", "alice")]).await.json().await.unwrap();
    answer(&app, "alice", "alice-password-1", "approve").await;
    let id = started["auth_req_id"].as_str().unwrap().to_owned();
    let racers: Vec<_> = (0..50)
        .map(|_| {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move { poll(&app, ("teller", "teller-secret"), &id).await.status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 1, "{statuses:?}");
}

/// Issue 11: 40 racing approvals and denials of one CIBA request from the user's
/// signed-in browser: exactly one takes effect (one compare-and-swap in the store), and
/// it is what the client's poll gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_racing_approvals_and_denials_of_one_request_take_effect_once() {
    let (hooks, _) = receiver().await;
    let app = Arc::new(TestServer::spawn_with(&clients(&hooks)).await);
    let teller = ("teller", "teller-secret");
    let started: Value =
        ask(&app, teller, &[("scope", "openid"), ("login_hint", "alice")]).await.json().await.unwrap();
    let mut browser = Browser::new(&app);
    let login = browser.open("/approvals").await;
    let page = browser.sign_in(&login, "alice", "alice-password-1").await;
    let csrf = page.input("csrf_token").unwrap();
    let request = page.input("request").expect("a pending request");
    let cookie = browser.cookie_header();
    let racers: Vec<_> = (0..40)
        .map(|i| {
            let (app, cookie, csrf, request) = (app.clone(), cookie.clone(), csrf.clone(), request.clone());
            tokio::spawn(async move {
                let decision = if i % 2 == 0 { "approve" } else { "deny" };
                let form =
                    [("csrf_token", csrf.as_str()), ("request", request.as_str()), ("decision", decision)];
                let response = app
                    .http
                    .post(app.url("/approvals"))
                    .header("cookie", cookie)
                    .form(&form)
                    .send()
                    .await
                    .unwrap();
                (decision, response.status().as_u16())
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for racer in racers {
        outcomes.push(racer.await.unwrap());
    }
    let winners: Vec<_> = outcomes.iter().filter(|(_, status)| *status == 303).collect();
    assert_eq!(winners.len(), 1, "exactly one decision takes effect: {outcomes:?}");
    assert!(outcomes.iter().all(|(_, status)| *status == 303 || *status == 400), "{outcomes:?}");
    let id = started["auth_req_id"].as_str().unwrap();
    app.clock.advance(10);
    let polled = poll(&app, teller, id).await;
    if winners[0].0 == "approve" {
        assert_eq!(polled.status(), 200, "the winning approval is what the client gets");
    } else {
        assert_eq!(oauth_error(polled).await, (400, "access_denied".into()), "the winning denial");
    }
}
