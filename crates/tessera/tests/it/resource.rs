//! The resource-server helper (`tessera-resource`): an API protected by Tessera's
//! access tokens, Bearer and DPoP-bound.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use serde_json::Value;
use tessera_resource::{Authenticated, Rejection, Verifier};

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
