//! Device flow decisions (issue 11.6): one limit guards every path that takes a user
//! code (RFC 8628 §5.1), and approving or denying is one atomic transition.

use std::sync::Arc;

use crate::browser::Browser;
use crate::device_flow::{self, TV};
use crate::support::{TestServer, oauth_error};

/// Every address behind the (trusted) loopback proxy counts on its own.
const PROXY: &str = "[server.proxy]\ntrusted_addresses = [\"127.0.0.0/8\"]\n";

/// A signed-in browser's cookies and a CSRF token for its forms.
async fn signed_in(app: &TestServer) -> (String, String) {
    let mut browser = Browser::new(app);
    let login = browser.open("/login").await;
    browser.sign_in(&login, "alice", "alice-password-1").await;
    let entry = browser.open("/device").await;
    (browser.cookie_header(), entry.input("csrf_token").unwrap())
}

/// `POST /device/decision` from `address` (as the proxy reports it); the status.
async fn decide(
    app: &TestServer,
    session: &(String, String),
    code: &str,
    decision: &str,
    address: Option<&str>,
) -> u16 {
    let form = [("csrf_token", session.1.as_str()), ("user_code", code), ("decision", decision)];
    let mut request = app.http.post(app.url("/device/decision")).header("cookie", &session.0).form(&form);
    if let Some(address) = address {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.unwrap().status().as_u16()
}

/// `POST /device` with `code`; the status.
async fn enter(app: &TestServer, session: &(String, String), code: &str) -> u16 {
    let form = [("csrf_token", session.1.as_str()), ("user_code", code)];
    app.http
        .post(app.url("/device"))
        .header("cookie", &session.0)
        .form(&form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_racing_approvals_and_denials_of_one_user_code_take_effect_once() {
    let app = Arc::new(TestServer::spawn_with(&format!("{TV}{PROXY}")).await);
    let started = device_flow::start(&app, "openid").await;
    let code = started["user_code"].as_str().unwrap().to_owned();
    let session = Arc::new(signed_in(&app).await);
    let racers: Vec<_> = (0..40)
        .map(|i| {
            let (app, session, code) = (app.clone(), session.clone(), code.clone());
            tokio::spawn(async move {
                let decision = if i % 2 == 0 { "approve" } else { "deny" };
                let address = format!("198.51.100.{}", i + 1);
                (decision, decide(&app, &session, &code, decision, Some(&address)).await)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for racer in racers {
        outcomes.push(racer.await.unwrap());
    }
    let winners: Vec<_> = outcomes.iter().filter(|(_, status)| *status == 200).collect();
    assert_eq!(winners.len(), 1, "exactly one decision takes effect: {outcomes:?}");
    assert!(outcomes.iter().all(|(_, status)| *status == 200 || *status == 400), "{outcomes:?}");
    let poll = device_flow::poll(&app, started["device_code"].as_str().unwrap()).await;
    if winners[0].0 == "approve" {
        assert_eq!(poll.status(), 200, "the winning approval is what the device gets");
    } else {
        assert_eq!(oauth_error(poll).await, (400, "access_denied".into()), "the winning denial");
    }
}

#[tokio::test]
async fn the_decision_path_is_throttled_together_with_the_code_page() {
    let app = TestServer::spawn_with(TV).await;
    let started = device_flow::start(&app, "openid").await;
    let code = started["user_code"].as_str().unwrap();
    let session = signed_in(&app).await;
    for _ in 0..10 {
        assert_eq!(enter(&app, &session, "BBBB-BBBB").await, 400);
        assert_eq!(decide(&app, &session, "BBBB-CCCC", "approve", None).await, 400);
    }
    // 20 attempts spent across both paths: the real code is no longer looked at.
    assert_eq!(decide(&app, &session, code, "approve", None).await, 429);
    assert_eq!(enter(&app, &session, code).await, 429);
    let poll = device_flow::poll(&app, started["device_code"].as_str().unwrap()).await;
    assert_eq!(oauth_error(poll).await, (400, "authorization_pending".into()), "nothing was approved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_parallel_guesses_on_the_decision_path_get_no_more_than_the_limit() {
    let app = Arc::new(TestServer::spawn_with(TV).await);
    let started = device_flow::start(&app, "openid").await;
    let session = Arc::new(signed_in(&app).await);
    let racers: Vec<_> = (0..40)
        .map(|i| {
            let (app, session) = (app.clone(), session.clone());
            tokio::spawn(async move {
                let guess = format!("BBBB-{}", ["BBBB", "CCCC", "DDDD", "FFFF"][i % 4]);
                decide(&app, &session, &guess, "approve", None).await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    let looked_up = statuses.iter().filter(|&&status| status == 400).count();
    let limit = usize::try_from(tessera_core::device::MAX_USER_CODE_ATTEMPTS).unwrap();
    assert_eq!(looked_up, limit, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&status| status == 429).count(), 40 - limit);
    let code = started["user_code"].as_str().unwrap();
    assert_eq!(decide(&app, &session, code, "approve", None).await, 429);
}
