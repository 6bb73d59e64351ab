//! The administration API (`/admin`): protected by this server's own tokens (scope
//! `tessera:admin`, audience `tessera-admin`), clients and users as JSON.

use serde_json::{Value, json};

use crate::browser::{Browser, query};
use crate::support::{TestServer, temp_dir};

/// An operator's client for the API.
const OPS: &str = r#"
[[clients]]
client_id = "ops"
allowed_grant_types = ["client_credentials"]
client_secrets = [{ value = "ops-secret" }]
allowed_scopes = ["tessera:admin"]
"#;

async fn admin_token(app: &TestServer) -> String {
    let form = [("grant_type", "client_credentials"), ("scope", "tessera:admin")];
    let response = app.post_form("/token", Some(("ops", "ops-secret")), &form).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let claims = app.verify_jwt(&token).await;
    assert_eq!(claims["aud"], "tessera-admin");
    token
}

async fn call(
    app: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn cc_status(app: &TestServer, client_id: &str, secret: &str) -> u16 {
    let form = [("grant_type", "client_credentials")];
    app.post_form("/token", Some((client_id, secret)), &form).await.status().as_u16()
}

#[tokio::test]
async fn only_a_tessera_admin_token_for_the_admin_audience_opens_the_api() {
    let app = TestServer::spawn_with(OPS).await;
    // No token, a made-up one, Basic credentials, a token of another API.
    let none = app.http.get(app.url("/admin/clients")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    assert_eq!(call(&app, reqwest::Method::GET, "/admin/clients", "made-up", None).await.status(), 401);
    let basic =
        app.http.get(app.url("/admin/clients")).basic_auth("ops", Some("ops-secret")).send().await.unwrap();
    assert_eq!(basic.status(), 401);
    let svc = app.svc_token(&[("scope", "api1.read")]).await;
    let other =
        call(&app, reqwest::Method::GET, "/admin/users", svc["access_token"].as_str().unwrap(), None).await;
    assert_eq!(other.status(), 403);
    assert_eq!(other.json::<Value>().await.unwrap()["error"], "insufficient_scope");
    // A client not allowed the scope cannot get it.
    let form = [("grant_type", "client_credentials"), ("scope", "tessera:admin")];
    let (status, error) =
        crate::support::oauth_error(app.post_form("/token", Some(("svc", "svc-secret")), &form).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_scope"));
    // The right token works; a revoked one does not.
    let token = admin_token(&app).await;
    assert_eq!(call(&app, reqwest::Method::GET, "/admin/clients", &token, None).await.status(), 200);
    app.clock.advance(3601);
    assert_eq!(
        call(&app, reqwest::Method::GET, "/admin/clients", &token, None).await.status(),
        401,
        "expired"
    );
    // The description is public.
    let openapi = app.get_json("/admin/openapi.json").await;
    assert_eq!(openapi["openapi"], "3.1.0");
    assert!(openapi["paths"]["/admin/clients/{client_id}/secret"]["post"].is_object());
}

#[tokio::test]
async fn clients_are_created_read_replaced_rotated_and_deleted_and_the_files_clients_are_read_only() {
    let app = TestServer::spawn_with(OPS).await;
    let token = admin_token(&app).await;
    let list: Value =
        call(&app, reqwest::Method::GET, "/admin/clients", &token, None).await.json().await.unwrap();
    let web = list["clients"].as_array().unwrap().iter().find(|c| c["client_id"] == "web").unwrap().clone();
    assert_eq!(web["source"], "config");
    let text = list.to_string();
    assert!(!text.contains("argon2") && !text.contains("sha256"), "no secret material: {text}");

    let new = json!({
        "client_id": "billing-job",
        "client_name": "Billing job",
        "allowed_grant_types": ["client_credentials"],
        "client_secrets": [{ "value": "billing-secret-1" }],
        "allowed_scopes": ["api1.read"]
    });
    let created = call(&app, reqwest::Method::POST, "/admin/clients", &token, Some(new.clone())).await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.json::<Value>().await.unwrap()["source"], "admin");
    assert_eq!(cc_status(&app, "billing-job", "billing-secret-1").await, 200);
    let again = call(&app, reqwest::Method::POST, "/admin/clients", &token, Some(new.clone())).await;
    assert_eq!(again.status(), 409);

    // The file's rules apply, with the field named.
    let bad = json!({ "client_id": "bad", "allowed_grant_types": ["password"], "allowed_scopes": ["nope"] });
    let response = call(&app, reqwest::Method::POST, "/admin/clients", &token, Some(bad)).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let fields: Vec<&str> =
        body["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"allowed_grant_types") && fields.contains(&"allowed_scopes"), "{body}");

    // Replace: another scope set takes effect at once on this instance.
    let mut replacement = new.clone();
    replacement["allowed_scopes"] = json!(["api1.read", "api1.write"]);
    let response =
        call(&app, reqwest::Method::PUT, "/admin/clients/billing-job", &token, Some(replacement)).await;
    assert_eq!(response.status(), 200);
    let form = [("grant_type", "client_credentials"), ("scope", "api1.write")];
    assert_eq!(app.post_form("/token", Some(("billing-job", "billing-secret-1")), &form).await.status(), 200);
    let read: Value = call(&app, reqwest::Method::GET, "/admin/clients/billing-job", &token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["allowed_scopes"], json!(["api1.read", "api1.write"]));

    // Rotate: the old secret stops, the new one (shown once) works.
    let rotated: Value = call(&app, reqwest::Method::POST, "/admin/clients/billing-job/secret", &token, None)
        .await
        .json()
        .await
        .unwrap();
    let secret = rotated["client_secret"].as_str().unwrap();
    assert_eq!(cc_status(&app, "billing-job", "billing-secret-1").await, 401);
    assert_eq!(cc_status(&app, "billing-job", secret).await, 200);

    // The file's clients are read-only here.
    for (method, path) in [
        (reqwest::Method::DELETE, "/admin/clients/web"),
        (reqwest::Method::POST, "/admin/clients/web/secret"),
    ] {
        assert_eq!(call(&app, method, path, &token, None).await.status(), 409, "{path}");
    }
    let response = call(&app, reqwest::Method::PUT, "/admin/clients/web", &token, Some(web_input())).await;
    assert_eq!(response.status(), 409);
    assert_eq!(call(&app, reqwest::Method::GET, "/admin/clients/nobody", &token, None).await.status(), 404);

    // Delete: the client can no longer authenticate.
    assert_eq!(
        call(&app, reqwest::Method::DELETE, "/admin/clients/billing-job", &token, None).await.status(),
        204
    );
    assert_eq!(cc_status(&app, "billing-job", secret).await, 401);
}

fn web_input() -> Value {
    json!({
        "client_id": "web",
        "allowed_grant_types": ["authorization_code"],
        "client_secrets": [{ "value": "other" }],
        "redirect_uris": ["https://web.example/cb"],
        "allowed_scopes": ["openid"]
    })
}

#[tokio::test]
async fn users_are_created_given_passwords_disabled_enabled_and_deleted() {
    let app = TestServer::spawn_with(OPS).await;
    let token = admin_token(&app).await;
    let create =
        json!({ "username": "carol", "password": "carol-password-1", "claims": { "name": "Carol" } });
    let response = call(&app, reqwest::Method::POST, "/admin/users", &token, Some(create.clone())).await;
    assert_eq!(response.status(), 201);
    let carol: Value = response.json().await.unwrap();
    assert_eq!(carol["source"], "admin");
    assert!(carol["subject"].is_string());
    assert_eq!(call(&app, reqwest::Method::POST, "/admin/users", &token, Some(create)).await.status(), 409);
    let short = json!({ "username": "dave", "password": "short" });
    let response = call(&app, reqwest::Method::POST, "/admin/users", &token, Some(short)).await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["fields"][0]["field"], "password");

    // Carol signs in and gets a refresh token.
    let signs_in = |password: &'static str| {
        let app = &app;
        async move {
            let (url, verifier) = crate::code_flow::authorization_url(
                app,
                "web",
                "https://web.example/cb",
                "openid offline_access",
                &[],
            );
            let mut browser = Browser::new(app);
            let login = browser.open(&url).await;
            let page = browser.sign_in(&login, "carol", password).await;
            if page.status != 200 && page.location.is_none() {
                return None;
            }
            let page = if page.body.contains("value=\"allow\"") {
                browser.consent(&page, "allow").await
            } else {
                page
            };
            let location = url::Url::parse(page.location.as_deref()?).ok()?;
            let code = query(&location, "code")?;
            let response = crate::code_flow::redeem(app, &code, &verifier, "https://web.example/cb").await;
            let body: Value = response.json().await.ok()?;
            body["refresh_token"].as_str().map(str::to_owned)
        }
    };
    let refresh_token = signs_in("carol-password-1").await.expect("carol signs in");

    // A new password: the old one no longer works.
    let response = call(
        &app,
        reqwest::Method::PUT,
        "/admin/users/carol/password",
        &token,
        Some(json!({ "password": "carol-password-2" })),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(signs_in("carol-password-1").await.is_none());
    assert!(signs_in("carol-password-2").await.is_some());

    // Disabled: no sign-in, and what she had is revoked.
    let disabled: Value = call(&app, reqwest::Method::POST, "/admin/users/carol/disable", &token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(disabled["disabled"], true);
    assert!(signs_in("carol-password-2").await.is_none());
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
    let (status, error) =
        crate::support::oauth_error(app.post_form("/token", Some(("web", "web-secret")), &form).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    let enabled: Value = call(&app, reqwest::Method::POST, "/admin/users/carol/enable", &token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(enabled["disabled"], false);
    assert!(signs_in("carol-password-2").await.is_some());

    let list: Value =
        call(&app, reqwest::Method::GET, "/admin/users", &token, None).await.json().await.unwrap();
    assert!(!list.to_string().contains("argon2"), "no hashes listed");
    assert!(
        list["users"].as_array().unwrap().iter().any(|u| u["username"] == "alice" && u["source"] == "config")
    );
    assert_eq!(call(&app, reqwest::Method::DELETE, "/admin/users/alice", &token, None).await.status(), 409);
    let password = json!({ "password": "alice-password-9" });
    let response =
        call(&app, reqwest::Method::PUT, "/admin/users/alice/password", &token, Some(password)).await;
    assert_eq!(response.status(), 409, "the file's users are changed in the file");
    assert_eq!(
        call(&app, reqwest::Method::POST, "/admin/users/alice/disable", &token, None).await.status(),
        409
    );
    assert_eq!(call(&app, reqwest::Method::DELETE, "/admin/users/carol", &token, None).await.status(), 204);
    assert!(signs_in("carol-password-2").await.is_none());
    assert_eq!(call(&app, reqwest::Method::DELETE, "/admin/users/carol", &token, None).await.status(), 404);
}

#[tokio::test]
async fn a_client_created_through_the_api_survives_a_restart_with_the_same_configuration() {
    let dir = temp_dir("admin-restart");
    let storage = format!("sqlite://{}", dir.join("tessera.db").display());
    let issuer = "https://tessera.example";
    let first = TestServer::spawn_on_store_as(issuer, &storage, OPS).await;
    let token = admin_token(&first).await;
    let new = json!({
        "client_id": "job",
        "allowed_grant_types": ["client_credentials"],
        "client_secrets": [{ "value": "job-secret-1" }],
        "allowed_scopes": ["api1.read"]
    });
    assert_eq!(call(&first, reqwest::Method::POST, "/admin/clients", &token, Some(new)).await.status(), 201);
    first.stop().await;
    let second = TestServer::spawn_on_store_as(issuer, &storage, OPS).await;
    assert_eq!(cc_status(&second, "job", "job-secret-1").await, 200, "not reconciled away");
    second.stop().await;
}

/// Two instances on one PostgreSQL: a change through one is seen by the other within
/// `client_cache_ttl`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_change_through_one_instance_is_seen_by_another() {
    let Ok(base_url) = std::env::var("TESSERA_TEST_POSTGRES") else {
        eprintln!("TESSERA_TEST_POSTGRES is not set: skipping the two-instance admin run");
        return;
    };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    let issuer = "https://tessera.example";
    let (a, b) = tokio::join!(
        TestServer::spawn_on_store_as(issuer, &schema.url, OPS),
        TestServer::spawn_on_store_as(issuer, &schema.url, OPS)
    );
    let token = admin_token(&a).await;
    let new = json!({
        "client_id": "job",
        "allowed_grant_types": ["client_credentials"],
        "client_secrets": [{ "value": "job-secret-1" }],
        "allowed_scopes": ["api1.read"]
    });
    assert_eq!(call(&a, reqwest::Method::POST, "/admin/clients", &token, Some(new)).await.status(), 201);
    assert_eq!(cc_status(&b, "job", "job-secret-1").await, 200);
    let rotated: Value = call(&a, reqwest::Method::POST, "/admin/clients/job/secret", &token, None)
        .await
        .json()
        .await
        .unwrap();
    b.clock.advance(31);
    assert_eq!(cc_status(&b, "job", "job-secret-1").await, 401, "the old secret is gone on B too");
    assert_eq!(cc_status(&b, "job", rotated["client_secret"].as_str().unwrap()).await, 200);
    assert_eq!(call(&a, reqwest::Method::DELETE, "/admin/clients/job", &token, None).await.status(), 204);
    b.clock.advance(31);
    assert_eq!(cc_status(&b, "job", rotated["client_secret"].as_str().unwrap()).await, 401);
    a.stop().await;
    b.stop().await;
    schema.drop().await;
}

/// `[admin] listen`: the API is served on its own listener and no longer on the main
/// one; DPoP-bound admin tokens prove possession for that listener's URL.
#[tokio::test]
async fn with_its_own_listener_the_api_is_only_there() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!("{OPS}\n[admin]\nlisten = \"127.0.0.1:{port}\"\n");
    let app = TestServer::spawn_with(&config).await;
    let token = admin_token(&app).await;
    let main = call(&app, reqwest::Method::GET, "/admin/clients", &token, None).await;
    assert_eq!(main.status(), 404, "not on the main listener");
    let admin = format!("http://127.0.0.1:{port}");
    let response = app.http.get(format!("{admin}/admin/clients")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let response = app.http.get(format!("{admin}/admin/users")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let response = app.http.get(format!("{admin}/token")).send().await.unwrap();
    assert_eq!(response.status(), 404, "only the admin API there");
    assert_eq!(app.http.get(format!("{admin}/admin/openapi.json")).send().await.unwrap().status(), 200);
}

/// An admin client that must use DPoP gets bound tokens: the API then wants the
/// `DPoP` scheme and a proof from the token's key for this request, on either listener.
#[tokio::test]
async fn a_dpop_bound_admin_token_needs_its_proof() {
    use crate::dpop::Prover;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!("{}\nrequire_dpop = true\n", OPS.trim_end());
    let config = format!("{config}\n[admin]\nlisten = \"127.0.0.1:{port}\"\n");
    let app = TestServer::spawn_with(&config).await;
    let prover = Prover::new();
    let form = [("grant_type", "client_credentials"), ("scope", "tessera:admin")];
    let response = app
        .http
        .post(app.url("/token"))
        .basic_auth("ops", Some("ops-secret"))
        .header("DPoP", prover.proof(&app, "POST", &app.url("/token")))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    let url = format!("http://127.0.0.1:{port}/admin/clients");
    let bearer = app.http.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(bearer.status(), 401, "a bound token is worthless as a bearer token");
    let other_url = app.http.get(&url).header("authorization", format!("DPoP {token}")).header(
        "DPoP",
        prover.proof_for(&app, "GET", &format!("http://127.0.0.1:{port}/admin/users"), token),
    );
    assert_eq!(other_url.send().await.unwrap().status(), 401, "a proof for another URL");
    let stranger = Prover::new();
    let response = app
        .http
        .get(&url)
        .header("authorization", format!("DPoP {token}"))
        .header("DPoP", stranger.proof_for(&app, "GET", &url, token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "a proof from another key");
    let response = app
        .http
        .get(&url)
        .header("authorization", format!("DPoP {token}"))
        .header("DPoP", prover.proof_for(&app, "GET", &url, token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// A user's token is never an admin token, even when a client that signs users in was
/// (wrongly) allowed the scope: the API takes client-credentials tokens only.
#[tokio::test]
async fn a_users_token_carrying_the_admin_scope_administers_nothing() {
    let config = format!(
        "{OPS}\n[[clients]]\nclient_id = \"console\"\nallowed_grant_types = [\"authorization_code\"]\n\
         client_secrets = [{{ value = \"console-secret\" }}]\nredirect_uris = [\"https://console.example/cb\"]\n\
         allowed_scopes = [\"openid\", \"tessera:admin\"]\n"
    );
    let app = TestServer::spawn_with(&config).await;
    let (url, verifier) = crate::code_flow::authorization_url(
        &app,
        "console",
        "https://console.example/cb",
        "openid tessera:admin",
        &[],
    );
    let back = Browser::new(&app).authorize(&url, "alice", "alice-password-1").await;
    let code = query(&back, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", "https://console.example/cb"),
    ];
    let body: Value =
        app.post_form("/token", Some(("console", "console-secret")), &form).await.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let claims = app.verify_jwt(token).await;
    assert_eq!(claims["aud"], "tessera-admin", "the token is for the admin API");
    let response = call(&app, reqwest::Method::GET, "/admin/users", token, None).await;
    assert_eq!(response.status(), 403);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "insufficient_scope");
}
