//! Client Credentials (RFC 6749 §4.4) with client_secret_basic and client_secret_post,
//! driven by the `oauth2` crate as any machine client would.

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{AuthType, ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse as _};

use crate::support::{TestServer, oauth_error};

#[tokio::test]
async fn service_client_gets_a_verifiable_jwt_with_client_secret_basic() {
    let app = TestServer::spawn().await;
    let client = BasicClient::new(ClientId::new("svc".into()))
        .set_client_secret(ClientSecret::new("svc-secret".into()))
        .set_token_uri(app.token_url());
    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("api1.read".into()))
        .request_async(&app.http)
        .await
        .expect("token response");
    assert_eq!(token.token_type(), &oauth2::basic::BasicTokenType::Bearer);
    assert_eq!(token.expires_in().unwrap().as_secs(), 3600);
    assert!(token.refresh_token().is_none(), "RFC 6749 §4.4.3: no refresh token");
    assert_eq!(token.scopes().unwrap(), &vec![Scope::new("api1.read".into())]);

    let claims = app.verify_jwt(token.access_token().secret()).await;
    assert_eq!(claims["iss"], app.base);
    assert_eq!(claims["aud"], "api1");
    assert_eq!(claims["sub"], "svc", "RFC 9068 §2.2: sub is the client without a user");
    assert_eq!(claims["client_id"], "svc");
    assert_eq!(claims["scope"], "api1.read");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
    assert!(claims["jti"].as_str().is_some_and(|jti| jti.len() >= 16));
}

#[tokio::test]
async fn service_client_gets_a_token_with_client_secret_post() {
    let app = TestServer::spawn().await;
    let client = BasicClient::new(ClientId::new("svc".into()))
        .set_client_secret(ClientSecret::new("svc-secret".into()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(app.token_url());
    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("api2.read".into()))
        .request_async(&app.http)
        .await
        .expect("token response");
    assert_eq!(app.verify_jwt(token.access_token().secret()).await["aud"], "api2");
}

#[tokio::test]
async fn absent_scope_grants_every_allowed_api_scope_and_their_audiences() {
    let app = TestServer::spawn().await;
    let body = app.svc_token(&[]).await;
    assert_eq!(body["scope"], "api1.read api1.write api2.read");
    let claims = app.verify_jwt(body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["aud"], serde_json::json!(["api1", "api2"]));
}

#[tokio::test]
async fn resource_indicator_narrows_the_audience() {
    let app = TestServer::spawn().await;
    let body = app.svc_token(&[("resource", "api2")]).await;
    assert_eq!(body["scope"], "api2.read");
    let claims = app.verify_jwt(body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["aud"], "api2");
}

#[tokio::test]
async fn token_responses_are_not_cached() {
    let app = TestServer::spawn().await;
    let response =
        app.post_form("/token", Some(("svc", "svc-secret")), &[("grant_type", "client_credentials")]).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let failed =
        app.post_form("/token", Some(("svc", "wrong")), &[("grant_type", "client_credentials")]).await;
    assert_eq!(failed.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn wrong_secret_in_basic_header_is_401_invalid_client_with_a_challenge() {
    let app = TestServer::spawn().await;
    let response =
        app.post_form("/token", Some(("svc", "wrong")), &[("grant_type", "client_credentials")]).await;
    assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(oauth_error(response).await, (401, "invalid_client".into()));

    let client = BasicClient::new(ClientId::new("svc".into()))
        .set_client_secret(ClientSecret::new("nope".into()))
        .set_token_uri(app.token_url());
    match client.exchange_client_credentials().request_async(&app.http).await {
        Err(RequestTokenError::ServerResponse(error)) => {
            assert_eq!(error.error(), &BasicErrorResponseType::InvalidClient);
        }
        other => panic!("expected invalid_client, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_secret_in_body_is_400_invalid_client() {
    let app = TestServer::spawn().await;
    let form = [("grant_type", "client_credentials"), ("client_id", "svc"), ("client_secret", "wrong")];
    let response = app.post_form("/token", None, &form).await;
    assert!(response.headers().get("www-authenticate").is_none());
    assert_eq!(oauth_error(response).await, (400, "invalid_client".into()));
}

#[tokio::test]
async fn unknown_client_is_invalid_client() {
    let app = TestServer::spawn().await;
    let response =
        app.post_form("/token", Some(("ghost", "svc-secret")), &[("grant_type", "client_credentials")]).await;
    assert_eq!(oauth_error(response).await, (401, "invalid_client".into()));
}

#[tokio::test]
async fn missing_client_authentication_is_invalid_client() {
    let app = TestServer::spawn().await;
    let response = app.post_form("/token", None, &[("grant_type", "client_credentials")]).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_client".into()));
}

#[tokio::test]
async fn client_id_alone_does_not_authenticate_a_confidential_client() {
    let app = TestServer::spawn().await;
    let response =
        app.post_form("/token", None, &[("grant_type", "client_credentials"), ("client_id", "svc")]).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_client".into()));
}

#[tokio::test]
async fn unknown_disallowed_and_user_scopes_are_invalid_scope() {
    let app = TestServer::spawn().await;
    for scope in ["nope", "api1.read nope", "openid", "offline_access"] {
        let response = app
            .post_form(
                "/token",
                Some(("other", "other-secret")),
                &[("grant_type", "client_credentials"), ("scope", scope)],
            )
            .await;
        assert_eq!(oauth_error(response).await, (400, "invalid_scope".into()), "scope {scope}");
    }
    // `other` may not have api1.write, though the scope exists.
    let response = app
        .post_form(
            "/token",
            Some(("other", "other-secret")),
            &[("grant_type", "client_credentials"), ("scope", "api1.write")],
        )
        .await;
    assert_eq!(oauth_error(response).await, (400, "invalid_scope".into()));
}

#[tokio::test]
async fn unknown_or_unreachable_resource_is_invalid_target() {
    let app = TestServer::spawn().await;
    for resource in ["urn:nowhere", "api2"] {
        let response = app
            .post_form(
                "/token",
                Some(("other", "other-secret")),
                &[("grant_type", "client_credentials"), ("resource", resource)],
            )
            .await;
        assert_eq!(oauth_error(response).await, (400, "invalid_target".into()), "resource {resource}");
    }
}

#[tokio::test]
async fn a_client_not_registered_for_the_grant_is_unauthorized_client() {
    let app = TestServer::spawn().await;
    let response =
        app.post_form("/token", Some(("tv", "tv-secret")), &[("grant_type", "client_credentials")]).await;
    assert_eq!(oauth_error(response).await, (400, "unauthorized_client".into()));
}

#[tokio::test]
async fn removed_and_unknown_grants_are_unsupported_grant_type() {
    let app = TestServer::spawn().await;
    for grant in ["password", "implicit", "urn:example:made-up", "authorization_code_plain"] {
        let form = [("grant_type", grant), ("username", "alice"), ("password", "x")];
        let response = app.post_form("/token", Some(("svc", "svc-secret")), &form).await;
        assert_eq!(oauth_error(response).await, (400, "unsupported_grant_type".into()), "grant {grant}");
    }
}

#[tokio::test]
async fn an_expired_client_secret_no_longer_authenticates() {
    let app = TestServer::spawn_with(
        r#"
[[clients]]
client_id = "rotating"
allowed_grant_types = ["client_credentials"]
client_secrets = [{ value = "old-secret", expires = "2001-01-01T00:00:00Z" }, { value = "new-secret" }]
allowed_scopes = ["api1.read"]
"#,
    )
    .await;
    let form = [("grant_type", "client_credentials")];
    let old = app.post_form("/token", Some(("rotating", "old-secret")), &form).await;
    assert_eq!(oauth_error(old).await, (401, "invalid_client".into()));
    let new = app.post_form("/token", Some(("rotating", "new-secret")), &form).await;
    assert_eq!(new.status(), 200);
}
