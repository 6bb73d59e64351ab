//! Token Exchange (RFC 8693): delegation with `act`, chains, impersonation by policy,
//! the refusals, and the binding rules: a subject token addressed to the exchanging
//! client (or an API it fronts), scopes within the client's and the audience's, and
//! the subject's grant carried along so that revoking it revokes the result.

use serde_json::{Value, json};

use crate::browser::{Browser, query};
use crate::code_flow::authorization_url;
use crate::support::{TestServer, oauth_error};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

const CLIENTS: &str = r#"
[[api_scopes]]
name = "billing.charge"
display_name = "Charge the user's account"

[[api_resources]]
name = "billing"
display_name = "Billing"
scopes = ["billing.charge"]
secrets = [{ value = "billing-secret" }]

[[api_resources]]
name = "ledger"
display_name = "Ledger (no scopes)"
secrets = [{ value = "ledger-secret" }]

[[clients]]
client_id = "portal"
client_name = "Portal"
allowed_grant_types = ["authorization_code", "urn:ietf:params:oauth:grant-type:token-exchange"]
client_secrets = [{ value = "portal-secret" }]
redirect_uris = ["https://portal.example/cb"]
allowed_scopes = ["openid", "api1.read", "api1.write", "api2.read"]
allow_offline_access = true
require_consent = false
token_exchange = { audiences = ["api2"], delegation = true }

[[clients]]
client_id = "shop"
client_name = "Shop gateway in front of api1"
allowed_grant_types = ["urn:ietf:params:oauth:grant-type:token-exchange"]
client_secrets = [{ value = "shop-secret" }]
allowed_scopes = ["api1.read", "billing.charge"]
token_exchange = { audiences = ["api1", "billing", "ledger"], delegation = true }

[[clients]]
client_id = "biller"
client_name = "Billing-only service"
allowed_grant_types = ["urn:ietf:params:oauth:grant-type:token-exchange"]
client_secrets = [{ value = "biller-secret" }]
allowed_scopes = ["billing.charge"]
token_exchange = { audiences = ["billing"], delegation = true }

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
    user_tokens_for(app, "openid api1.read api2.read").await
}

/// Alice's tokens from the portal for `scope`.
async fn user_tokens_for(app: &TestServer, scope: &str) -> Value {
    let mut browser = Browser::new(app);
    let (url, verifier) = authorization_url(app, "portal", "https://portal.example/cb", scope, &[]);
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
async fn an_id_token_can_be_the_subject_of_the_client_it_was_issued_to() {
    let app = TestServer::spawn_with(CLIENTS).await;
    let user = user_tokens(&app).await;
    let form = [
        ("subject_token", user["id_token"].as_str().unwrap()),
        ("subject_token_type", ID_TOKEN),
        ("audience", "api2"),
    ];
    let response = exchange(&app, ("portal", "portal-secret"), &form).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(app.verify_jwt(body["access_token"].as_str().unwrap()).await["sub"], "alice-sub");
}

#[tokio::test]
async fn an_id_token_issued_to_another_client_is_refused() {
    let app = TestServer::spawn_with(CLIENTS).await;
    let user = user_tokens(&app).await;
    // The portal's ID token, presented by the gateway: its `aud` is the portal.
    let form = [
        ("subject_token", user["id_token"].as_str().unwrap()),
        ("subject_token_type", ID_TOKEN),
        ("audience", "api2"),
    ];
    let response = exchange(&app, ("gateway", "gateway-secret"), &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_request".into()));
}

#[tokio::test]
async fn an_access_token_for_an_api_the_client_does_not_front_is_refused() {
    let app = TestServer::spawn_with(CLIENTS).await;
    // Alice's token is for api1 and api2; `biller` may request neither's scopes.
    let user = user_tokens(&app).await;
    let form = [
        ("subject_token", user["access_token"].as_str().unwrap()),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "billing"),
        ("scope", "billing.charge"),
    ];
    let response = exchange(&app, ("biller", "biller-secret"), &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_request".into()));
    // Nor is a service's own token (addressed to api1) a subject for it.
    let service = app.svc_token(&[("scope", "api1.read")]).await;
    let form = [
        ("subject_token", service["access_token"].as_str().unwrap()),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "billing"),
    ];
    let response = exchange(&app, ("biller", "biller-secret"), &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_request".into()));
}

#[tokio::test]
async fn issued_scopes_stay_within_the_clients_allowed_scopes() {
    let app = TestServer::spawn_with(CLIENTS).await;
    // Alice's token carries api1.write; `shop` may only request api1.read.
    let user = user_tokens_for(&app, "openid api1.read api1.write").await;
    let subject = user["access_token"].as_str().unwrap();
    let form = [("subject_token", subject), ("subject_token_type", ACCESS_TOKEN), ("audience", "api1")];
    let response = exchange(&app, ("shop", "shop-secret"), &form).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "api1.read", "not api1.write, which the client may not request");
    let claims = app.verify_jwt(body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["scope"], "api1.read");
    let form = [
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "api1"),
        ("scope", "api1.write"),
    ];
    let response = exchange(&app, ("shop", "shop-secret"), &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_scope".into()));
}

#[tokio::test]
async fn a_gateway_exchanges_a_token_for_its_api_for_a_downstream_apis_narrower_scope() {
    let app = TestServer::spawn_with(CLIENTS).await;
    // Alice's token for api1 (which `shop` fronts) never carried billing.charge.
    let user = user_tokens_for(&app, "openid api1.read").await;
    let subject = user["access_token"].as_str().unwrap();
    let form = [
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "billing"),
        ("scope", "billing.charge"),
    ];
    let response = exchange(&app, ("shop", "shop-secret"), &form).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "billing.charge");
    let claims = app.verify_jwt(body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["aud"], "billing");
    assert_eq!(claims["sub"], "alice-sub");
    assert_eq!(claims["scope"], "billing.charge");
    assert_eq!(claims["act"], json!({ "sub": "shop" }));

    // A scope of another API than the audience is refused.
    let form = [
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "billing"),
        ("scope", "api1.read"),
    ];
    let response = exchange(&app, ("shop", "shop-secret"), &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_scope".into()));
}

#[tokio::test]
async fn an_api_without_scopes_is_the_audience_of_an_audience_only_token() {
    let app = TestServer::spawn_with(CLIENTS).await;
    let user = user_tokens_for(&app, "openid api1.read").await;
    let subject = user["access_token"].as_str().unwrap();
    let form = [("subject_token", subject), ("subject_token_type", ACCESS_TOKEN), ("audience", "ledger")];
    let response = exchange(&app, ("shop", "shop-secret"), &form).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("scope").is_none(), "no scope: {body}");
    let claims = app.verify_jwt(body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["aud"], "ledger");
    assert!(claims.get("scope").is_none());
    // A scope cannot be asked for it: none belongs to the ledger.
    let form = [
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "ledger"),
        ("scope", "billing.charge"),
    ];
    let response = exchange(&app, ("shop", "shop-secret"), &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_scope".into()));
}

/// Whether the introspection endpoint calls `token` active.
async fn active(app: &TestServer, token: &str) -> bool {
    let response = app.post_form("/introspect", Some(("api2", "api2-secret")), &[("token", token)]).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["active"] == json!(true)
}

/// The status and `WWW-Authenticate` error of userinfo for `token`.
async fn userinfo_error(app: &TestServer, token: &str) -> (u16, String) {
    let response = app.http.get(app.url("/userinfo")).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let error =
        challenge.split("error=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_default();
    (status, error.to_owned())
}

#[tokio::test]
async fn revoking_the_subjects_grant_by_refresh_token_reuse_revokes_exchanged_tokens() {
    let app = TestServer::spawn_with(CLIENTS).await;
    let user = user_tokens_for(&app, "openid api1.read api2.read offline_access").await;
    let refresh_token = user["refresh_token"].as_str().unwrap();
    let mut exchanged = Vec::new();
    for (subject, subject_type, client) in [
        (user["access_token"].as_str().unwrap(), ACCESS_TOKEN, ("gateway", "gateway-secret")),
        (user["id_token"].as_str().unwrap(), ID_TOKEN, ("portal", "portal-secret")),
    ] {
        let form = [("subject_token", subject), ("subject_token_type", subject_type), ("audience", "api2")];
        let response = exchange(&app, client, &form).await;
        assert_eq!(response.status(), 200, "{subject_type}");
        let body: Value = response.json().await.unwrap();
        exchanged.push(body["access_token"].as_str().unwrap().to_owned());
    }
    // An exchange of an exchanged token stays in the grant too.
    let form = [("subject_token", exchanged[0].as_str()), ("subject_token_type", ACCESS_TOKEN)];
    let response = exchange(&app, ("backend", "backend-secret"), &form).await;
    assert_eq!(response.status(), 200);
    let chained: Value = response.json().await.unwrap();
    exchanged.push(chained["access_token"].as_str().unwrap().to_owned());
    for token in &exchanged {
        assert!(active(&app, token).await);
        // Live, but without `openid`: userinfo answers 403, not 401.
        assert_eq!(userinfo_error(&app, token).await, (403, "insufficient_scope".into()));
    }

    // RFC 9700 §4.14.2: rotate once, then reuse the old refresh token.
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    let response = app.post_form("/token", Some(("portal", "portal-secret")), &refresh).await;
    assert_eq!(response.status(), 200);
    let response = app.post_form("/token", Some(("portal", "portal-secret")), &refresh).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_grant".into()));

    for token in &exchanged {
        assert!(!active(&app, token).await, "exchanged token inactive after the grant's revocation");
        assert_eq!(userinfo_error(&app, token).await, (401, "invalid_token".into()));
    }
    // Nor can the grant's ID token be exchanged any more.
    let form = [("subject_token", user["id_token"].as_str().unwrap()), ("subject_token_type", ID_TOKEN)];
    let response = exchange(&app, ("portal", "portal-secret"), &form).await;
    assert_eq!(oauth_error(response).await, (400, "invalid_request".into()));
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
