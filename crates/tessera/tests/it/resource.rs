//! The resource-server helper (`tessera-resource`): an API protected by Tessera's
//! access tokens, Bearer and DPoP-bound, and discoverable by its protected resource
//! metadata (RFC 9728) as MCP clients expect.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use serde_json::Value;
use tessera_resource::{Authenticated, Rejection, ResourceMetadata, Verifier};

use crate::dpop::Prover;
use crate::private_key_jwt::{Answer, jwks_host};
use crate::support::TestServer;

async fn orders(Authenticated(token): Authenticated) -> Result<String, Rejection> {
    token.require_scope("api1.read")?;
    Ok(format!("orders of {}", token.subject))
}

/// Starts an API for audience `api1` and returns its base URL.
async fn api(app: &TestServer) -> String {
    api_with(&app.issuer, true).await
}

/// Starts an API for audience `api1` of `issuer`, configured with its base URL or not.
async fn api_with(issuer: &str, with_base: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut verifier = Verifier::new(issuer, "api1");
    if with_base {
        verifier = verifier.with_api_base(&base);
    }
    let router = Router::new().route("/orders", get(orders)).with_state(Arc::new(verifier));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

/// A DPoP-bound token for `svc` with `api1.read`.
async fn dpop_token(app: &TestServer, prover: &Prover) -> String {
    let proof = prover.proof(app, "POST", &app.url("/token"));
    let response = app
        .http
        .post(app.url("/token"))
        .basic_auth("svc", Some("svc-secret"))
        .header("DPoP", proof)
        .form(&[("grant_type", "client_credentials"), ("scope", "api1.read")])
        .send()
        .await
        .unwrap();
    response.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

async fn call(
    app: &TestServer,
    url: &str,
    authorization: Option<String>,
    proof: Option<String>,
) -> reqwest::Response {
    let mut request = app.http.get(url);
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request.send().await.unwrap()
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_api_accepts_its_tokens_and_refuses_the_rest() {
    let app = TestServer::spawn().await;
    let base = api(&app).await;
    let url = format!("{base}/orders");
    let token = |scope: &'static str| {
        let app = &app;
        async move { app.svc_token(&[("scope", scope)]).await["access_token"].as_str().unwrap().to_owned() }
    };
    let ok = call(&app, &url, Some(format!("Bearer {}", token("api1.read").await)), None).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "orders of svc");

    let other_api = call(&app, &url, Some(format!("Bearer {}", token("api2.read").await)), None).await;
    assert_eq!(other_api.status(), 401, "aud is api2");
    assert!(challenge(&other_api).contains("invalid_token"));
    let wrong_scope = call(&app, &url, Some(format!("Bearer {}", token("api1.write").await)), None).await;
    assert_eq!(wrong_scope.status(), 403);
    assert!(challenge(&wrong_scope).contains("insufficient_scope"));
    let none = call(&app, &url, None, None).await;
    assert_eq!(none.status(), 401);
    let mut tampered = token("api1.read").await;
    tampered.push('A');
    assert_eq!(call(&app, &url, Some(format!("Bearer {tampered}")), None).await.status(), 401);
}

#[tokio::test]
async fn a_dpop_bound_token_needs_a_fresh_proof_from_its_key() {
    let app = TestServer::spawn().await;
    let base = api(&app).await;
    let url = format!("{base}/orders");
    let prover = Prover::new();
    let proof = prover.proof(&app, "POST", &app.url("/token"));
    let response = app
        .http
        .post(app.url("/token"))
        .basic_auth("svc", Some("svc-secret"))
        .header("DPoP", proof)
        .form(&[("grant_type", "client_credentials"), ("scope", "api1.read")])
        .send()
        .await
        .unwrap();
    let token = response.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();

    let as_bearer = call(&app, &url, Some(format!("Bearer {token}")), None).await;
    assert_eq!(as_bearer.status(), 401, "a bound token is no bearer token");
    let no_proof = call(&app, &url, Some(format!("DPoP {token}")), None).await;
    assert_eq!(no_proof.status(), 401);
    assert!(challenge(&no_proof).starts_with("DPoP "));
    let proof = prover.proof_for(&app, "GET", &url, &token);
    let ok = call(&app, &url, Some(format!("DPoP {token}")), Some(proof.clone())).await;
    assert_eq!(ok.status(), 200);
    let replayed = call(&app, &url, Some(format!("DPoP {token}")), Some(proof)).await;
    assert_eq!(replayed.status(), 401);
    assert!(challenge(&replayed).contains("invalid_dpop_proof"));
    let stranger = Prover::new().proof_for(&app, "GET", &url, &token);
    assert_eq!(call(&app, &url, Some(format!("DPoP {token}")), Some(stranger)).await.status(), 401);
}

#[tokio::test]
async fn htu_is_judged_against_the_configured_base_url_never_the_host_header() {
    let app = TestServer::spawn().await;
    let prover = Prover::new();
    let token = dpop_token(&app, &prover).await;
    let base = api(&app).await;
    let url = format!("{base}/orders");
    let forged_host = |proof: String| {
        app.http
            .get(&url)
            .header("Host", "evil.example")
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof)
            .send()
    };
    // A proof naming the forged host is refused even though `Host` agrees with it.
    let proof = prover.proof_for(&app, "GET", "http://evil.example/orders", &token);
    let response = forged_host(proof).await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(challenge(&response).contains("invalid_dpop_proof"));
    // A proof naming the configured URL passes whatever `Host` says.
    let proof = prover.proof_for(&app, "GET", &url, &token);
    assert_eq!(forged_host(proof).await.unwrap().status(), 200);

    // An API without a configured base URL cannot judge `htu`: DPoP is refused there.
    let unconfigured = api_with(&app.issuer, false).await;
    let url = format!("{unconfigured}/orders");
    let proof = prover.proof_for(&app, "GET", &url, &token);
    let response = call(&app, &url, Some(format!("DPoP {token}")), Some(proof)).await;
    assert_eq!(response.status(), 401);
    assert!(challenge(&response).contains("invalid_dpop_proof"));
    // Bearer tokens need no URL there.
    let bearer = app.svc_token(&[("scope", "api1.read")]).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(call(&app, &url, Some(format!("Bearer {bearer}")), None).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_jwks_fetch_is_shared_and_not_repeated_within_the_interval() {
    let app = TestServer::spawn().await;
    // The "issuer" is a host whose JWKS endpoint fails, and counts the attempts.
    let issuer_host = jwks_host(Answer::Failure).await;
    let issuer = issuer_host.url.trim_end_matches("/jwks.json").to_owned();
    let base = api_with(&issuer, true).await;
    let url = format!("{base}/orders");
    let header = tessera_core::secret::b64url(r#"{"alg":"ES256","typ":"at+jwt","kid":"unknown-key"}"#);
    let junk = format!("{header}.{}.AAAA", tessera_core::secret::b64url("{}"));
    let app = Arc::new(app);
    let calls: Vec<_> = (0..40)
        .map(|_| {
            let (app, url, junk) = (app.clone(), url.clone(), junk.clone());
            tokio::spawn(async move { call(&app, &url, Some(format!("Bearer {junk}")), None).await.status() })
        })
        .collect();
    for status in calls {
        assert_eq!(status.await.unwrap(), 401);
    }
    let later = call(&app, &url, Some(format!("Bearer {junk}")), None).await;
    assert_eq!(later.status(), 401);
    assert_eq!(
        issuer_host.fetches.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one fetch, then the failure is remembered"
    );
}

/// An API scope, an API resource named by `resource` (so that RFC 8707 `resource`
/// selects it and `aud` is that URL), and a client allowed the scope.
fn mcp_resource_toml(resource: &str) -> String {
    format!(
        r#"
[[api_scopes]]
name = "mcp.tools"
[[api_resources]]
name = "{resource}"
scopes = ["mcp.tools"]
[[clients]]
client_id = "mcp-agent"
allowed_grant_types = ["client_credentials"]
client_secrets = [{{ value = "mcp-agent-secret" }}]
allowed_scopes = ["mcp.tools"]
"#
    )
}

async fn tools(Authenticated(token): Authenticated) -> Result<String, Rejection> {
    token.require_scope("mcp.tools")?;
    Ok(format!("tools for {}", token.client_id))
}

/// Serves `router`, plus the metadata router of `verifier`, on `listener`.
fn serve_described(listener: tokio::net::TcpListener, router: Router<Arc<Verifier>>, verifier: Verifier) {
    let router = router.merge(verifier.resource_metadata_router()).with_state(Arc::new(verifier));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
}

/// The value of the quoted parameter `name` in a `WWW-Authenticate` challenge.
fn challenge_parameter(challenge: &str, name: &str) -> Option<String> {
    let (_, rest) = challenge.split_once(&format!(r#"{name}=""#))?;
    Some(rest.split_once('"')?.0.to_owned())
}

#[tokio::test]
async fn an_mcp_client_finds_the_authorization_server_from_the_401_challenge() {
    // The API's address comes first: Tessera's configuration names the resource by it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let resource = format!("{base}/mcp");
    let app = TestServer::spawn_with(&mcp_resource_toml(&resource)).await;
    let metadata = ResourceMetadata::new(&resource, &["mcp.tools"]).unwrap().with_resource_name("Test MCP");
    let verifier =
        Verifier::new(&app.issuer, &resource).with_api_base(&base).with_resource_metadata(metadata);
    serve_described(listener, Router::new().route("/mcp", get(tools)), verifier);
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource/mcp");

    // RFC 9728 §5.1: the 401 names the metadata, with or without a (bad) token.
    let anonymous = call(&app, &resource, None, None).await;
    assert_eq!(anonymous.status(), 401);
    let anonymous = challenge(&anonymous);
    assert!(anonymous.starts_with("Bearer "), "{anonymous}");
    assert!(anonymous.contains(r#"error="invalid_token""#), "{anonymous}");
    assert_eq!(challenge_parameter(&anonymous, "resource_metadata").as_deref(), Some(metadata_url.as_str()));
    let junk = call(&app, &resource, Some("Bearer junk".into()), None).await;
    assert_eq!(junk.status(), 401);
    assert_eq!(
        challenge_parameter(&challenge(&junk), "resource_metadata").as_deref(),
        Some(metadata_url.as_str())
    );

    // RFC 9728 §3: the document, cacheable JSON whose `resource` is the URL the client
    // started from (§3.3).
    let response = app.http.get(&metadata_url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers()["cache-control"].to_str().unwrap().contains("max-age=3600"));
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["resource"], resource.as_str());
    assert_eq!(document["authorization_servers"], serde_json::json!([app.issuer]));
    assert_eq!(document["scopes_supported"], serde_json::json!(["mcp.tools"]));
    assert_eq!(document["bearer_methods_supported"], serde_json::json!(["header"]));
    assert!(document["dpop_signing_alg_values_supported"].as_array().unwrap().contains(&"ES256".into()));
    assert_eq!(document["resource_name"], "Test MCP");

    // RFC 8414 §3: on to the authorization server's metadata, whose issuer must match.
    let issuer = document["authorization_servers"][0].as_str().unwrap();
    let response =
        app.http.get(format!("{issuer}/.well-known/oauth-authorization-server")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let server: Value = response.json().await.unwrap();
    assert_eq!(server["issuer"], issuer);

    // And a token for this resource (RFC 8707) from the token endpoint found there opens it.
    let token_endpoint = server["token_endpoint"].as_str().unwrap();
    let token: Value = app
        .http
        .post(token_endpoint)
        .basic_auth("mcp-agent", Some("mcp-agent-secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "mcp.tools"), ("resource", &resource)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access_token = token["access_token"].as_str().unwrap();
    let ok = call(&app, &resource, Some(format!("Bearer {access_token}")), None).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "tools for mcp-agent");
}

#[tokio::test]
async fn a_resource_without_a_path_is_described_at_the_bare_well_known_path() {
    let app = TestServer::spawn().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let metadata = ResourceMetadata::new(&base, &["api1.read", "api1.write"]).unwrap();
    // No base URL: DPoP-bound tokens are refused, so no DPoP algorithms are offered.
    let verifier = Verifier::new(&app.issuer, "api1").with_resource_metadata(metadata);
    serve_described(listener, Router::new().route("/orders", get(orders)), verifier);
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource");

    let anonymous = call(&app, &format!("{base}/orders"), None, None).await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        challenge_parameter(&challenge(&anonymous), "resource_metadata").as_deref(),
        Some(metadata_url.as_str())
    );
    let document: Value = app.http.get(&metadata_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(document["resource"], base.as_str());
    assert_eq!(document["authorization_servers"], serde_json::json!([app.issuer]));
    assert_eq!(document["scopes_supported"], serde_json::json!(["api1.read", "api1.write"]));
    assert!(document.get("dpop_signing_alg_values_supported").is_none(), "{document}");
    assert!(document.get("resource_name").is_none(), "{document}");

    // A 403 for a missing scope is left as it was: no new parameters.
    let token = app.svc_token(&[("scope", "api1.write")]).await["access_token"].as_str().unwrap().to_owned();
    let forbidden = call(&app, &format!("{base}/orders"), Some(format!("Bearer {token}")), None).await;
    assert_eq!(forbidden.status(), 403);
    assert!(challenge(&forbidden).contains("insufficient_scope"));
}
