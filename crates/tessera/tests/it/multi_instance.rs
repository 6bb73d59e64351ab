//! Several instances on one PostgreSQL database: shared keys, shared revocation.
//! Runs when `TESSERA_TEST_POSTGRES` names a server (`scripts/test` sets it).

use crate::support::{TestServer, postgres_url, temp_dir, verify_with};

/// The public URL of the load balancer in front of the instances.
const ISSUER: &str = "https://tessera.example";

async fn jwks(app: &TestServer) -> jsonwebtoken::jwk::JwkSet {
    app.http.get(app.url("/jwks")).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_keys_rotation_and_revocation() {
    let Some(base_url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    let (a, b) = tokio::join!(
        TestServer::spawn_instance(ISSUER, &schema.url, temp_dir("pg-a")),
        TestServer::spawn_instance(ISSUER, &schema.url, temp_dir("pg-b"))
    );

    // A token issued by one instance verifies with the other's JWKS.
    let token = a.svc_token(&[("scope", "api1.read")]).await["access_token"].as_str().unwrap().to_owned();
    let now = tessera_core::Clock::now(b.clock.as_ref());
    let claims = verify_with(&jwks(&b).await, &token, ISSUER, now);
    assert_eq!(claims["client_id"], "svc");
    let b_token = b.svc_token(&[]).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().kid,
        jsonwebtoken::decode_header(&b_token).unwrap().kid,
        "both instances sign with the one shared key"
    );

    // Rotation triggered through the command line on A's configuration...
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["keys", "rotate", "--config"])
        .arg(&a.config_path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // ...shows in both JWKS once their key caches (60 s) refresh.
    a.clock.advance(61);
    b.clock.advance(61);
    assert_eq!(jwks(&a).await.keys.len(), 4, "a successor for ES256 and for RS256");
    assert_eq!(jwks(&b).await.keys.len(), 4);

    // A revocation on B is seen by introspection on A at once.
    let response = b.post_form("/revoke", Some(("svc", "svc-secret")), &[("token", &token)]).await;
    assert_eq!(response.status(), 200);
    let response = a.post_form("/introspect", Some(("api1", "api1-secret")), &[("token", &token)]).await;
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["active"], false);

    a.stop().await;
    b.stop().await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_create_exactly_one_first_key() {
    let Some(base_url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    let (a, b, c) = tokio::join!(
        TestServer::spawn_instance(ISSUER, &schema.url, temp_dir("pg-1")),
        TestServer::spawn_instance(ISSUER, &schema.url, temp_dir("pg-2")),
        TestServer::spawn_instance(ISSUER, &schema.url, temp_dir("pg-3"))
    );
    let keys = a.provider.store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2, "one first key per algorithm (ES256, RS256) for all instances");
    for app in [&a, &b, &c] {
        assert_eq!(jwks(app).await.keys.len(), 2);
    }
    a.stop().await;
    b.stop().await;
    c.stop().await;
    schema.drop().await;
}
