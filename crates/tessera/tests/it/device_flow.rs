//! Device Authorization Grant (RFC 8628): the device polls, the user approves on
//! the `/device` page.

use std::sync::Arc;

use serde_json::Value;

use crate::browser::Browser;
use crate::support::{TestServer, oauth_error};

pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub const TV: &str = r#"
[[clients]]
client_id = "living-room"
client_name = "Living Room TV"
allowed_grant_types = ["urn:ietf:params:oauth:grant-type:device_code"]
require_client_secret = false
allowed_scopes = ["openid", "profile", "api1.read"]
allow_offline_access = true
"#;

pub async fn start(app: &TestServer, scope: &str) -> Value {
    let response =
        app.post_form("/device_authorization", None, &[("client_id", "living-room"), ("scope", scope)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

pub async fn poll(app: &TestServer, device_code: &str) -> reqwest::Response {
    let form = [("grant_type", DEVICE_GRANT), ("device_code", device_code), ("client_id", "living-room")];
    app.post_form("/token", None, &form).await
}

/// Enters the code on `/device`, signs in when asked, and answers `decision`.
pub async fn approve(browser: &mut Browser<'_>, verification_uri_complete: &str, decision: &str) -> String {
    let entry = browser.open(verification_uri_complete).await;
    assert!(entry.body.contains("<label for=\"user_code\">Code</label>"));
    let code = entry.input("user_code").expect("prefilled code");
    let csrf = entry.input("csrf_token").unwrap();
    let mut page =
        browser.post("/device", &[("csrf_token", csrf.as_str()), ("user_code", code.as_str())]).await;
    if page.status == 303 {
        // Not signed in: the sign-in page returns to /device with the code.
        let login = browser.follow(page).await;
        let entry = browser.sign_in(&login, "alice", "alice-password-1").await;
        let csrf = entry.input("csrf_token").unwrap();
        page = browser.post("/device", &[("csrf_token", csrf.as_str()), ("user_code", code.as_str())]).await;
    }
    assert!(page.body.contains("Living Room TV"), "{}", page.body);
    assert!(page.body.contains(">Approve<") && page.body.contains(">Deny<"));
    let csrf = page.input("csrf_token").unwrap();
    let code = page.input("user_code").unwrap();
    let done = browser
        .post(
            "/device/decision",
            &[("csrf_token", csrf.as_str()), ("user_code", code.as_str()), ("decision", decision)],
        )
        .await;
    done.body
}

#[tokio::test]
async fn a_tv_signs_a_user_in_through_the_device_page() {
    let app = TestServer::spawn_with(TV).await;
    let started = start(&app, "openid profile api1.read offline_access").await;
    let user_code = started["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9, "BCDF-GHJK");
    assert!(user_code.chars().all(|c| c == '-' || "BCDFGHJKLMNPQRSTVWXZ".contains(c)), "{user_code}");
    assert_eq!(started["verification_uri"], app.url("/device"));
    assert_eq!(started["interval"], 5);
    assert_eq!(started["expires_in"], 600);
    let device_code = started["device_code"].as_str().unwrap();

    assert_eq!(oauth_error(poll(&app, device_code).await).await, (400, "authorization_pending".into()));

    let mut browser = Browser::new(&app);
    let done = approve(&mut browser, started["verification_uri_complete"].as_str().unwrap(), "approve").await;
    assert!(done.contains("Device connected"));

    app.clock.advance(5);
    let response = poll(&app, device_code).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let claims = app.verify_jwt(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (claims["sub"].as_str(), claims["client_id"].as_str()),
        (Some("alice-sub"), Some("living-room"))
    );
    assert!(tokens["id_token"].is_string() && tokens["refresh_token"].is_string());

    app.clock.advance(5);
    assert_eq!(
        oauth_error(poll(&app, device_code).await).await,
        (400, "invalid_grant".into()),
        "redeemed once"
    );
}

#[tokio::test]
async fn polling_too_fast_slows_the_device_down() {
    let app = TestServer::spawn_with(TV).await;
    let started = start(&app, "openid").await;
    let device_code = started["device_code"].as_str().unwrap();
    assert_eq!(oauth_error(poll(&app, device_code).await).await.1, "authorization_pending");
    assert_eq!(oauth_error(poll(&app, device_code).await).await.1, "slow_down");
    // The interval is now 10 s: 5 s later is still too soon.
    app.clock.advance(5);
    assert_eq!(oauth_error(poll(&app, device_code).await).await.1, "slow_down");
    app.clock.advance(15);
    assert_eq!(oauth_error(poll(&app, device_code).await).await.1, "authorization_pending");
}

#[tokio::test]
async fn a_denied_request_is_access_denied() {
    let app = TestServer::spawn_with(TV).await;
    let started = start(&app, "openid").await;
    let mut browser = Browser::new(&app);
    let done = approve(&mut browser, started["verification_uri_complete"].as_str().unwrap(), "deny").await;
    assert!(done.contains("Request denied"));
    assert_eq!(
        oauth_error(poll(&app, started["device_code"].as_str().unwrap()).await).await,
        (400, "access_denied".into())
    );
}

#[tokio::test]
async fn an_old_device_code_is_expired_token_and_its_user_code_is_refused() {
    let app = TestServer::spawn_with(TV).await;
    let started = start(&app, "openid").await;
    app.clock.advance(601);
    assert_eq!(
        oauth_error(poll(&app, started["device_code"].as_str().unwrap()).await).await,
        (400, "expired_token".into())
    );
    let mut browser = Browser::new(&app);
    let login = browser.open("/login").await;
    let entry = browser.sign_in(&login, "alice", "alice-password-1").await;
    let entry = browser.follow(entry).await;
    let entry = if entry.body.contains("name=\"user_code\"") { entry } else { browser.open("/device").await };
    let csrf = entry.input("csrf_token").unwrap();
    let code = started["user_code"].as_str().unwrap();
    let page = browser.post("/device", &[("csrf_token", csrf.as_str()), ("user_code", code)]).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("not valid or has expired"));
}

#[tokio::test]
async fn guessing_user_codes_is_rate_limited() {
    let app = TestServer::spawn_with(TV).await;
    let mut browser = Browser::new(&app);
    let login = browser.open("/login").await;
    browser.sign_in(&login, "alice", "alice-password-1").await;
    let entry = browser.open("/device").await;
    let csrf = entry.input("csrf_token").unwrap();
    for _ in 0..tessera_core::device::MAX_USER_CODE_ATTEMPTS {
        let page =
            browser.post("/device", &[("csrf_token", csrf.as_str()), ("user_code", "BBBB-BBBB")]).await;
        assert_eq!(page.status, 400);
    }
    let page = browser.post("/device", &[("csrf_token", csrf.as_str()), ("user_code", "BBBB-BBBB")]).await;
    assert_eq!(page.status, 429);
}

#[tokio::test]
async fn device_authorization_refuses_clients_without_the_grant_and_bad_scopes() {
    let app = TestServer::spawn_with(TV).await;
    let response =
        app.post_form("/device_authorization", Some(("svc", "svc-secret")), &[("scope", "api1.read")]).await;
    assert_eq!(oauth_error(response).await, (400, "unauthorized_client".into()));
    let response = app
        .post_form("/device_authorization", None, &[("client_id", "living-room"), ("scope", "api2.read")])
        .await;
    assert_eq!(oauth_error(response).await, (400, "invalid_scope".into()));
    let response = app.post_form("/device_authorization", None, &[("client_id", "ghost")]).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_client".into()));
}

#[tokio::test]
async fn another_client_cannot_redeem_the_device_code() {
    let app = TestServer::spawn_with(TV).await;
    let started = start(&app, "openid").await;
    let form = [("grant_type", DEVICE_GRANT), ("device_code", started["device_code"].as_str().unwrap())];
    let response = app.post_form("/token", Some(("tv", "tv-secret")), &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_grant".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_racing_polls_redeem_an_approved_device_code_once() {
    let app = Arc::new(TestServer::spawn_with(TV).await);
    let started = start(&app, "openid").await;
    let mut browser = Browser::new(&app);
    approve(&mut browser, started["verification_uri_complete"].as_str().unwrap(), "approve").await;
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let racers: Vec<_> = (0..50)
        .map(|_| {
            let (app, code) = (app.clone(), device_code.clone());
            tokio::spawn(async move { poll(&app, &code).await.status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 1, "{statuses:?}");
}

/// RFC 8628 §3.5 under concurrency: of 40 polls at the same moment, one is answered
/// (`authorization_pending`) and the others were too soon (`slow_down`), on the store's
/// one pacing statement; the interval then grew once per slow poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_simultaneous_polls_are_paced_as_one() {
    let app = Arc::new(TestServer::spawn_with(TV).await);
    let started = start(&app, "api1.read").await;
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let racers: Vec<_> = (0..40)
        .map(|_| {
            let (app, device_code) = (app.clone(), device_code.clone());
            tokio::spawn(async move { oauth_error(poll(&app, &device_code).await).await.1 })
        })
        .collect();
    let mut errors = Vec::new();
    for racer in racers {
        errors.push(racer.await.unwrap());
    }
    let pending = errors.iter().filter(|e| *e == "authorization_pending").count();
    let slowed = errors.iter().filter(|e| *e == "slow_down").count();
    assert_eq!((pending, slowed), (1, 39), "{errors:?}");
}
