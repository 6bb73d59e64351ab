//! Malformed requests get the RFC's error, never a 500.

use crate::support::{TestServer, oauth_error};

#[tokio::test]
async fn missing_grant_type_is_invalid_request() {
    let app = TestServer::spawn().await;
    let response = app.post_form("/token", Some(("svc", "svc-secret")), &[("scope", "api1.read")]).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_request".into()));
}

#[tokio::test]
async fn a_body_that_is_not_a_form_is_invalid_request() {
    let app = TestServer::spawn().await;
    let response = app
        .http
        .post(app.url("/token"))
        .basic_auth("svc", Some("svc-secret"))
        .json(&serde_json::json!({ "grant_type": "client_credentials" }))
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(response).await, (400, "invalid_request".into()));
}

#[tokio::test]
async fn a_repeated_parameter_is_invalid_request() {
    let app = TestServer::spawn().await;
    let form = [("grant_type", "client_credentials"), ("scope", "api1.read"), ("scope", "api2.read")];
    let response = app.post_form("/token", Some(("svc", "svc-secret")), &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_request".into()));
}

#[tokio::test]
async fn two_authentication_methods_at_once_are_invalid_request() {
    let app = TestServer::spawn().await;
    let form = [("grant_type", "client_credentials"), ("client_id", "svc"), ("client_secret", "svc-secret")];
    let response = app.post_form("/token", Some(("svc", "svc-secret")), &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_request".into()));
}

#[tokio::test]
async fn a_malformed_basic_header_is_401_invalid_client() {
    let app = TestServer::spawn().await;
    let response = app
        .http
        .post(app.url("/token"))
        .header("authorization", "Basic %%%not-base64")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(response).await, (401, "invalid_client".into()));
}

#[tokio::test]
async fn an_oversized_body_is_refused_early_with_413() {
    let app = TestServer::spawn().await;
    let huge = "x".repeat(200 * 1024);
    let response = app
        .http
        .post(app.url("/token"))
        .basic_auth("svc", Some("svc-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=client_credentials&scope={huge}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestServer::spawn().await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!((ready.status().as_u16(), ready.text().await.unwrap()), (200, "ready".into()));
}

#[tokio::test]
async fn get_on_the_token_endpoint_is_405() {
    let app = TestServer::spawn().await;
    let response = app.http.get(app.url("/token")).send().await.unwrap();
    assert_eq!(response.status(), 405);
}
