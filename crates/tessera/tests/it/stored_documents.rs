//! Flow documents the store holds but this version cannot read (written by another
//! release, or damaged) are a `server_error` with the cause logged, never shown as
//! "expired" or taken for a request that does not exist.

use serde_json::{Value, json};

use crate::browser::Browser;
use crate::code_flow::authorization_url;
use crate::support::TestServer;

fn now(app: &TestServer) -> i64 {
    tessera_core::Clock::now(app.clock.as_ref())
}

#[tokio::test]
async fn an_unreadable_interaction_is_a_server_error_not_expired() {
    let app = TestServer::spawn().await;
    let mut browser = Browser::new(&app);
    let (url, _) = authorization_url(&app, "web", "https://web.example/cb", "openid", &[]);
    let login = browser.open(&url).await;
    let id = login.input("interaction").expect("an interaction");
    let store = app.provider.store.as_ref();
    store
        .put_request(
            &format!("interaction:{id}"),
            &json!({ "written_by": "a future release" }),
            now(&app) + 600,
        )
        .await
        .unwrap();
    let page = browser.get(&format!("/login?interaction={id}")).await;
    assert_eq!(page.status, 500, "{}", page.body);
    assert!(page.body.contains("server_error"), "{}", page.body);
    assert!(!page.body.contains("expired"), "{}", page.body);
    // An interaction that is really gone is still "expired".
    let gone = browser.get("/login?interaction=no-such-interaction").await;
    assert_eq!(gone.status, 400);
    assert!(gone.body.contains("expired"));
    app.stop().await;
}

#[tokio::test]
async fn an_unreadable_device_request_is_a_server_error_at_the_token_endpoint() {
    let app = TestServer::spawn_with(crate::device_flow::TV).await;
    let started = crate::device_flow::start(&app, "openid").await;
    let device_code = started["device_code"].as_str().unwrap();
    let store = app.provider.store.as_ref();
    let key = format!("device:{}", tessera_core::model::device_request_id(device_code));
    assert!(store.polled(&key, now(&app)).await.unwrap().is_some(), "the request is stored under {key}");
    store.put_polled(&key, "pending", &json!({ "decision": 7 }), now(&app) + 600).await.unwrap();
    let response = crate::device_flow::poll(&app, device_code).await;
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "server_error", "not invalid_grant: the request exists");
    app.stop().await;
}
