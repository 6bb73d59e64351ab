//! Introspection (RFC 7662) and revocation (RFC 7009).

use serde_json::Value;

use crate::support::{TestServer, oauth_error};

async fn introspect(app: &TestServer, caller: (&str, &str), token: &str) -> Value {
    let response = app.post_form("/introspect", Some(caller), &[("token", token)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

#[tokio::test]
async fn an_api_introspects_a_jwt_meant_for_it() {
    let app = TestServer::spawn().await;
    let token = app.svc_token(&[("scope", "api1.read")]).await["access_token"].as_str().unwrap().to_owned();
    let body = introspect(&app, ("api1", "api1-secret"), &token).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["scope"], "api1.read");
    assert_eq!(body["client_id"], "svc");
    assert_eq!(body["sub"], "svc");
    assert_eq!(body["aud"], "api1");
    assert_eq!(body["iss"], app.base);
    assert_eq!(body["token_type"], "Bearer");
}

#[tokio::test]
async fn another_api_sees_the_token_as_inactive() {
    let app = TestServer::spawn().await;
    let token = app.svc_token(&[("scope", "api1.read")]).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        introspect(&app, ("api2", "api2-secret"), &token).await,
        serde_json::json!({ "active": false })
    );
}

#[tokio::test]
async fn a_wrong_api_secret_is_401_invalid_client() {
    let app = TestServer::spawn().await;
    let response = app.post_form("/introspect", Some(("api1", "wrong")), &[("token", "x")]).await;
    assert_eq!(oauth_error(response).await, (401, "invalid_client".into()));
    let response = app.post_form("/introspect", None, &[("token", "x")]).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_client".into()));
}

#[tokio::test]
async fn introspection_without_a_token_is_invalid_request() {
    let app = TestServer::spawn().await;
    let response = app.post_form("/introspect", Some(("api1", "api1-secret")), &[]).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_request".into()));
}

#[tokio::test]
async fn garbage_expired_and_foreign_tokens_are_inactive() {
    let app = TestServer::spawn().await;
    let token = app.svc_token(&[("scope", "api1.read")]).await["access_token"].as_str().unwrap().to_owned();
    let mut tampered = token.clone();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    for candidate in ["garbage", "a.b.c", tampered.as_str()] {
        assert_eq!(
            introspect(&app, ("api1", "api1-secret"), candidate).await["active"],
            false,
            "{candidate}"
        );
    }
    app.clock.advance(3600);
    assert_eq!(introspect(&app, ("api1", "api1-secret"), &token).await["active"], false, "expired");
}

#[tokio::test]
async fn a_client_introspects_only_its_own_tokens() {
    let app = TestServer::spawn().await;
    let token = app.svc_token(&[]).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&app, ("svc", "svc-secret"), &token).await["active"], true);
    assert_eq!(introspect(&app, ("other", "other-secret"), &token).await["active"], false);
}

#[tokio::test]
async fn a_revoked_jwt_is_inactive_at_once() {
    let app = TestServer::spawn().await;
    let token = app.svc_token(&[("scope", "api1.read")]).await["access_token"].as_str().unwrap().to_owned();
    let response = app
        .post_form(
            "/revoke",
            Some(("svc", "svc-secret")),
            &[("token", &token), ("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(introspect(&app, ("api1", "api1-secret"), &token).await["active"], false);
}

#[tokio::test]
async fn reference_tokens_are_opaque_resolved_by_introspection_and_revocable() {
    let app = TestServer::spawn().await;
    let response =
        app.post_form("/token", Some(("ref", "ref-secret")), &[("grant_type", "client_credentials")]).await;
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert!(!token.contains('.'), "a reference token is not a JWT");
    let active = introspect(&app, ("api1", "api1-secret"), &token).await;
    assert_eq!((active["active"].clone(), active["client_id"].clone()), (true.into(), "ref".into()));

    let response = app.post_form("/revoke", Some(("ref", "ref-secret")), &[("token", &token)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(introspect(&app, ("api1", "api1-secret"), &token).await["active"], false);
}

#[tokio::test]
async fn a_reference_token_expires_by_the_server_clock() {
    let app = TestServer::spawn().await;
    let response =
        app.post_form("/token", Some(("ref", "ref-secret")), &[("grant_type", "client_credentials")]).await;
    let token = response.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    app.clock.advance(3600);
    assert_eq!(introspect(&app, ("api1", "api1-secret"), &token).await["active"], false);
}

#[tokio::test]
async fn revoking_another_clients_token_is_refused_and_changes_nothing() {
    let app = TestServer::spawn().await;
    let token = app.svc_token(&[("scope", "api1.read")]).await["access_token"].as_str().unwrap().to_owned();
    let response = app.post_form("/revoke", Some(("other", "other-secret")), &[("token", &token)]).await;
    assert_eq!(oauth_error(response).await, (400, "unauthorized_client".into()));
    assert_eq!(introspect(&app, ("api1", "api1-secret"), &token).await["active"], true);
}

#[tokio::test]
async fn revoking_an_unknown_token_succeeds_and_bad_callers_are_refused() {
    let app = TestServer::spawn().await;
    let response = app.post_form("/revoke", Some(("svc", "svc-secret")), &[("token", "never-issued")]).await;
    assert_eq!(response.status(), 200);
    let response = app.post_form("/revoke", Some(("svc", "wrong")), &[("token", "never-issued")]).await;
    assert_eq!(oauth_error(response).await, (401, "invalid_client".into()));
    let response = app.post_form("/revoke", Some(("svc", "svc-secret")), &[]).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_request".into()));
}
