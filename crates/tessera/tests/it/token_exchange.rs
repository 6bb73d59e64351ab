//! Token Exchange (RFC 8693): delegation with `act`, chains, impersonation by policy,
//! and the refusals.

use serde_json::{Value, json};

use crate::browser::{Browser, query};
use crate::code_flow::authorization_url;
use crate::support::{TestServer, oauth_error};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

const CLIENTS: &str = r#"
[[clients]]
client_id = "portal"
client_name = "Portal"
allowed_grant_types = ["authorization_code"]
client_secrets = [{ value = "portal-secret" }]
redirect_uris = ["https://portal.example/cb"]
allowed_scopes = ["openid", "api1.read", "api2.read"]
require_consent = false

[[clients]]
client_id = "gateway"
allowed_grant_types = ["urn:ietf:params:oauth:grant-type:token-exchange", "client_credentials"]
client_secrets = [{ value = "gateway-secret" }]
allowed_scopes = ["api1.read", "api2.read"]
token_exchange = { audiences = ["api2"], delegation = true }

[[clients]]
client_id = "backend"
allowed_grant_types = ["urn:ietf:params:oauth:grant-type:token-exchange"]
client_secrets = [{ value = "backend-secret" }]
allowed_scopes = ["api2.read"]
token_exchange = { audiences = ["api2"], delegation = true }

[[clients]]
client_id = "impersonator"
allowed_grant_types = ["urn:ietf:params:oauth:grant-type:token-exchange"]
client_secrets = [{ value = "impersonator-secret" }]
allowed_scopes = ["api2.read"]
token_exchange = { audiences = ["api2"], impersonation = true }
"#;

/// Alice's tokens from the portal: an access token for api1 and api2, and an ID token.
async fn user_tokens(app: &TestServer) -> Value {
    let mut browser = Browser::new(app);
    let (url, verifier) =
        authorization_url(app, "portal", "https://portal.example/cb", "openid api1.read api2.read", &[]);
    let code = query(&browser.authorize(&url, "alice", "alice-password-1").await, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", "https://portal.example/cb"),
    ];
    let response = app.post_form("/token", Some(("portal", "portal-secret")), &form).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn exchange(app: &TestServer, client: (&str, &str), form: &[(&str, &str)]) -> reqwest::Response {
    let mut body = vec![("grant_type", GRANT)];
    body.extend_from_slice(form);
    app.post_form("/token", Some(client), &body).await
}

#[tokio::test]
async fn a_gateway_exchanges_a_users_token_for_a_narrower_delegated_one() {
    let app = TestServer::spawn_with(CLIENTS).await;
    let user = user_tokens(&app).await;
    let subject = user["access_token"].as_str().unwrap();
    let form = [
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "api2"),
        ("scope", "api2.read"),
    ];
    let response = exchange(&app, ("gateway", "gateway-secret"), &form).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "api2.read");
    assert!(body.get("refresh_token").is_none());
    let claims = app.verify_jwt(body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], "alice-sub", "same subject");
    assert_eq!(claims["aud"], "api2");
    assert_eq!(claims["client_id"], "gateway");
    assert_eq!(claims["act"], json!({ "sub": "gateway" }), "RFC 8693 §4.1");

    // Introspection reports the actor too.
    let response = app
        .post_form(
            "/introspect",
            Some(("api2", "api2-secret")),
            &[("token", body["access_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(response.json::<Value>().await.unwrap()["act"], json!({ "sub": "gateway" }));
}

#[tokio::test]
async fn a_chain_of_delegation_nests_the_actors() {
    let app = TestServer::spawn_with(CLIENTS).await;
    let user = user_tokens(&app).await;
    let form = [
        ("subject_token", user["access_token"].as_str().unwrap()),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "api2"),
    ];
    let first: Value = exchange(&app, ("gateway", "gateway-secret"), &form).await.json().await.unwrap();
    let form = [
        ("subject_token", first["access_token"].as_str().unwrap()),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "api2"),
    ];
    let response = exchange(&app, ("backend", "backend-secret"), &form).await;
    assert_eq!(response.status(), 200);
    let second: Value = response.json().await.unwrap();
    let claims = app.verify_jwt(second["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], "alice-sub");
    assert_eq!(claims["act"], json!({ "sub": "backend", "act": { "sub": "gateway" } }));
}

#[tokio::test]
async fn an_actor_token_names_the_actor() {
    let app = TestServer::spawn_with(CLIENTS).await;
    let user = user_tokens(&app).await;
    let actor = app
        .post_form("/token", Some(("gateway", "gateway-secret")), &[("grant_type", "client_credentials")])
        .await;
    let actor: Value = actor.json().await.unwrap();
    let form = [
        ("subject_token", user["access_token"].as_str().unwrap()),
        ("subject_token_type", ACCESS_TOKEN),
        ("actor_token", actor["access_token"].as_str().unwrap()),
        ("actor_token_type", ACCESS_TOKEN),
        ("audience", "api2"),
    ];
    let body: Value = exchange(&app, ("gateway", "gateway-secret"), &form).await.json().await.unwrap();
    let claims = app.verify_jwt(body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["act"], json!({ "sub": "gateway" }));
}

#[tokio::test]
async fn impersonation_only_where_the_policy_allows_it() {
    let app = TestServer::spawn_with(CLIENTS).await;
    let user = user_tokens(&app).await;
    let form = [
        ("subject_token", user["access_token"].as_str().unwrap()),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "api2"),
    ];
    let body: Value =
        exchange(&app, ("impersonator", "impersonator-secret"), &form).await.json().await.unwrap();
    let claims = app.verify_jwt(body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], "alice-sub");
    assert!(claims.get("act").is_none(), "impersonation: no act");
    // An impersonation-only client cannot name an actor (that is delegation).
    let actor = user["access_token"].as_str().unwrap();
    let with_actor = [
        ("subject_token", actor),
        ("subject_token_type", ACCESS_TOKEN),
        ("actor_token", actor),
        ("actor_token_type", ACCESS_TOKEN),
    ];
    let response = exchange(&app, ("impersonator", "impersonator-secret"), &with_actor).await;
    assert_eq!(oauth_error(response).await, (400, "unauthorized_client".into()));
}

#[tokio::test]
async fn an_id_token_can_be_the_subject() {
    let app = TestServer::spawn_with(CLIENTS).await;
    let user = user_tokens(&app).await;
    let form = [
        ("subject_token", user["id_token"].as_str().unwrap()),
        ("subject_token_type", ID_TOKEN),
        ("audience", "api2"),
    ];
    let response = exchange(&app, ("gateway", "gateway-secret"), &form).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(app.verify_jwt(body["access_token"].as_str().unwrap()).await["sub"], "alice-sub");
}

/// A refused exchange: what it tries, its form, and the expected `error`.
type Refusal<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

#[tokio::test]
async fn refusals_carry_the_rfc_8693_errors() {
    let app = TestServer::spawn_with(CLIENTS).await;
    let user = user_tokens(&app).await;
    let subject = user["access_token"].as_str().unwrap();
    let gateway = ("gateway", "gateway-secret");
    let cases: Vec<Refusal> = vec![
        (
            "audience outside the policy",
            vec![("subject_token", subject), ("subject_token_type", ACCESS_TOKEN), ("audience", "api1")],
            "invalid_target",
        ),
        (
            "unknown audience",
            vec![
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("resource", "urn:nowhere"),
            ],
            "invalid_target",
        ),
        (
            "wider scope",
            vec![
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("audience", "api2"),
                ("scope", "api2.read api1.write"),
            ],
            "invalid_scope",
        ),
        (
            "garbage subject",
            vec![("subject_token", "garbage"), ("subject_token_type", ACCESS_TOKEN)],
            "invalid_request",
        ),
        (
            "unknown token type",
            vec![("subject_token", subject), ("subject_token_type", "urn:example:saml")],
            "invalid_request",
        ),
        ("missing subject", vec![("subject_token_type", ACCESS_TOKEN)], "invalid_request"),
        (
            "actor without type",
            vec![("subject_token", subject), ("subject_token_type", ACCESS_TOKEN), ("actor_token", subject)],
            "invalid_request",
        ),
        (
            "refresh token requested",
            vec![
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"),
            ],
            "invalid_request",
        ),
    ];
    for (case, form, expected) in cases {
        let response = exchange(&app, gateway, &form).await;
        assert_eq!(oauth_error(response).await, (400, expected.to_owned()), "{case}");
    }
    // A client without the grant, and a revoked subject token.
    let form = [("subject_token", subject), ("subject_token_type", ACCESS_TOKEN)];
    let response = exchange(&app, ("svc", "svc-secret"), &form).await;
    assert_eq!(oauth_error(response).await, (400, "unauthorized_client".into()));
    app.post_form("/revoke", Some(("portal", "portal-secret")), &[("token", subject)]).await;
    let response = exchange(&app, gateway, &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_request".into()), "revoked subject token");
}
