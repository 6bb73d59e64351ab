//! Store outages (issue 12): a PostgreSQL cluster of the test's own stopped and
//! started under a running server, and commits whose answer is lost on the way back.

use std::time::{Duration, Instant};

use serde_json::Value;
use tessera_core::secret::SecretHash;
use tessera_core::store::RefreshRecord;

use crate::outage_support::{PgCluster, PgProxy, through_proxy, upstream_of, wait_for_status};
use crate::support::{TestServer, postgres_url};

/// Whatever the store does, nothing waits longer than this (issue 12's target).
const LONGEST: Duration = Duration::from_secs(3);

async fn refresh(app: &TestServer, token: &str) -> reqwest::Response {
    app.post_form(
        "/token",
        Some(("web", "web-secret")),
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

/// A `temporarily_unavailable` answer as RFC 6749 shapes it, with when to retry.
async fn assert_unavailable(response: reqwest::Response) {
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"), "503 carries Retry-After");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["error"], "temporarily_unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_outage_fails_fast_with_json_503s_and_recovers_within_a_second() {
    let Some(cluster) = PgCluster::start().await else { return };
    let app = TestServer::spawn_on_store(&cluster.url(), "").await;
    // Warm the caches a running server has: the clients and the keys.
    app.svc_token(&[]).await;
    let (status, error) = crate::support::oauth_error(refresh(&app, "no-such-token").await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    assert_eq!(app.http.get(app.url("/readyz")).send().await.unwrap().status(), 200);

    tokio::task::block_in_place(|| cluster.stop_server());

    // The token endpoint fails fast, in RFC 6749's shape.
    let started = Instant::now();
    let response = refresh(&app, "no-such-token").await;
    assert!(started.elapsed() < LONGEST, "answered after {:?}", started.elapsed());
    assert_unavailable(response).await;

    // Readiness says so within a second or so.
    let started = Instant::now();
    let response = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(1500), "readyz took {:?}", started.elapsed());
    assert_eq!(response.status(), 503);

    // Client credentials go on from the caches, even past their refresh time.
    app.clock.advance(61);
    let token = app.svc_token(&[("scope", "api1.read")]).await;
    assert!(token["access_token"].is_string());

    // A page that needs the store says to try again, as a page.
    let response = app
        .http
        .get(app.url("/authorize?client_id=native&response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&scope=openid"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert!(response.text().await.unwrap().contains("try again"));

    // PostgreSQL returns: ready again within a second, and the token endpoint works.
    tokio::task::block_in_place(|| cluster.start_server());
    let recovered = wait_for_status(&app.http, &app.url("/readyz"), 200, Duration::from_secs(5)).await;
    assert!(recovered < Duration::from_secs(1), "ready again after {recovered:?}");
    let (status, error) = crate::support::oauth_error(refresh(&app, "no-such-token").await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    app.stop().await;
}

/// Stores a refresh token `value` of client `web`, as a code redemption would.
async fn seed_refresh_token(app: &TestServer, value: &str, grant_id: &str) {
    let now = tessera_core::Clock::now(app.clock.as_ref());
    let record = RefreshRecord {
        grant_id: grant_id.into(),
        client_id: "web".into(),
        subject: "alice-sub".into(),
        scopes: vec!["api1.read".into()],
        resources: Vec::new(),
        auth_time: now,
        sid: "sid-1".into(),
        issued_at: now,
        expires_at: now + 3600,
        idle_expires_at: None,
        dpop_jkt: None,
        x5t_s256: None,
        amr: Vec::new(),
        acr: None,
    };
    app.provider.store.put_refresh_token(&SecretHash::of(value), &record).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_whose_commit_answer_is_lost_is_settled_and_answered_200() {
    let Some(base_url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    let proxy = PgProxy::start(upstream_of(&schema.url)).await;
    let app = TestServer::spawn_on_store(&through_proxy(&schema.url, proxy.port), "").await;
    seed_refresh_token(&app, "lost-commit-1", "grant-lost-1").await;

    let mut cut = proxy.cut_after_next_commit().await;
    let response = refresh(&app, "lost-commit-1").await;
    assert!(cut.try_recv().is_ok(), "the rotation's COMMIT was cut");
    assert_eq!(response.status(), 200, "the committed rotation is answered");
    let body: Value = response.json().await.unwrap();
    let next = body["refresh_token"].as_str().unwrap();

    // The family is intact: the successor rotates.
    assert_eq!(refresh(&app, next).await.status(), 200);
    app.stop().await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_an_in_doubt_rotation_gets_its_successor_on_any_instance_not_a_revocation() {
    let Some(base_url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    let proxy = PgProxy::start(upstream_of(&schema.url)).await;
    let a = TestServer::spawn_on_store(&through_proxy(&schema.url, proxy.port), "").await;
    let b = TestServer::spawn_on_store(&schema.url, "").await;
    seed_refresh_token(&a, "in-doubt-1", "grant-doubt-1").await;

    // The commit's answer is lost and the store stays unreachable: A cannot tell.
    let mut cut = proxy.blackout_after_next_commit().await;
    let started = Instant::now();
    let response = refresh(&a, "in-doubt-1").await;
    assert!(cut.try_recv().is_ok(), "the rotation's COMMIT was cut ({})", response.status());
    assert!(started.elapsed() < LONGEST, "answered after {:?}", started.elapsed());
    assert_unavailable(response).await;

    // The store is back; A has noted the doubt in it by the time the client retries.
    proxy.refuse(false);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The retry, on the other instance, gets the successor the commit stored...
    let response = refresh(&b, "in-doubt-1").await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let body: Value = response.json().await.unwrap();
    let next = body["refresh_token"].as_str().unwrap().to_owned();
    // ...and on the first instance the same one.
    let again: Value = refresh(&a, "in-doubt-1").await.json().await.unwrap();
    assert_eq!(again["refresh_token"], next.as_str());

    // No revocation: the successor rotates, on either instance.
    assert_eq!(refresh(&b, &next).await.status(), 200);
    a.stop().await;
    b.stop().await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reusing_a_rotated_token_without_doubt_still_revokes_the_family() {
    let Some(base_url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    let app = TestServer::spawn_on_store(&schema.url, "").await;
    seed_refresh_token(&app, "plain-1", "grant-plain-1").await;
    let body: Value = refresh(&app, "plain-1").await.json().await.unwrap();
    let next = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, error) = crate::support::oauth_error(refresh(&app, "plain-1").await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    let (status, error) = crate::support::oauth_error(refresh(&app, &next).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"), "the family is revoked");
    app.stop().await;
    schema.drop().await;
}

/// The verifier of every code [`seed_code`] stores.
const VERIFIER: &str = "in-doubt-verifier-in-doubt-verifier-in-doubt-verifier";

/// Stores a code `value` of client `web` with a refresh-bearing grant, as /authorize would.
async fn seed_code(app: &TestServer, value: &str, grant_id: &str) {
    let now = tessera_core::Clock::now(app.clock.as_ref());
    let challenge = tessera_core::secret::b64url(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        VERIFIER.as_bytes(),
    ));
    let grant = tessera_core::store::PendingGrant {
        grant_id: grant_id.into(),
        client_id: "web".into(),
        subject: "alice-sub".into(),
        redirect_uri: None,
        code_challenge: challenge,
        scopes: vec!["api1.read".into(), "offline_access".into()],
        resources: Vec::new(),
        nonce: None,
        auth_time: now,
        sid: "sid-1".into(),
        dpop_jkt: None,
        amr: Vec::new(),
        acr: None,
    };
    app.provider.store.put_code(&SecretHash::of(value), &grant, now + 600).await.unwrap();
}

async fn redeem(app: &TestServer, code: &str, verifier: &str) -> reqwest::Response {
    app.post_form(
        "/token",
        Some(("web", "web-secret")),
        &[("grant_type", "authorization_code"), ("code", code), ("code_verifier", verifier)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_redemption_whose_commit_answer_is_lost_is_settled_and_answered_200() {
    let Some(base_url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    let proxy = PgProxy::start(upstream_of(&schema.url)).await;
    let app = TestServer::spawn_on_store(&through_proxy(&schema.url, proxy.port), "").await;
    seed_code(&app, "lost-code-1", "grant-lost-code-1").await;

    let mut cut = proxy.cut_after_next_commit().await;
    let response = redeem(&app, "lost-code-1", VERIFIER).await;
    assert!(cut.try_recv().is_ok(), "the redemption's COMMIT was cut");
    assert_eq!(response.status(), 200, "the committed redemption is answered");
    let body: Value = response.json().await.unwrap();
    assert!(body["access_token"].is_string());
    let refresh_token = body["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&app, refresh_token).await.status(), 200, "the grant is live");
    app.stop().await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_an_in_doubt_code_redemption_gets_tokens_once_on_any_instance_and_the_grant_stays_valid()
 {
    let Some(base_url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    let proxy = PgProxy::start(upstream_of(&schema.url)).await;
    let a = TestServer::spawn_on_store(&through_proxy(&schema.url, proxy.port), "").await;
    let b = TestServer::spawn_on_store(&schema.url, "").await;
    seed_code(&a, "doubt-code-1", "grant-doubt-code-1").await;

    // The commit's answer is lost and the store stays unreachable: A cannot tell.
    let mut cut = proxy.blackout_after_next_commit().await;
    let started = Instant::now();
    let response = redeem(&a, "doubt-code-1", VERIFIER).await;
    assert!(cut.try_recv().is_ok(), "the redemption's COMMIT was cut ({})", response.status());
    assert!(started.elapsed() < LONGEST, "answered after {:?}", started.elapsed());
    assert_unavailable(response).await;

    // The store is back; A has noted the doubt in it by the time the client retries.
    proxy.refuse(false);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // A retry with another verifier is not the same redemption: refused, and (the code
    // being used) it is reuse; so first the rightful retry, on the other instance.
    let response = redeem(&b, "doubt-code-1", VERIFIER).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let body: Value = response.json().await.unwrap();
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    // The grant stays valid: its refresh token rotates.
    let rotated = refresh(&b, &refresh_token).await;
    assert_eq!(rotated.status(), 200, "the grant is not revoked");
    let next: Value = rotated.json().await.unwrap();
    let next = next["refresh_token"].as_str().unwrap().to_owned();

    // Exactly once: the next use of the code, even by the same client, is reuse and
    // revokes the grant (RFC 6749 §4.1.2).
    let (status, error) = crate::support::oauth_error(redeem(&a, "doubt-code-1", VERIFIER).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    let (status, error) = crate::support::oauth_error(refresh(&a, &next).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"), "the grant is revoked");
    a.stop().await;
    b.stop().await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_forty_parallel_retries_after_an_in_doubt_code_redemption_exactly_one_gets_tokens() {
    let Some(base_url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    let proxy = PgProxy::start(upstream_of(&schema.url)).await;
    let a = TestServer::spawn_on_store(&through_proxy(&schema.url, proxy.port), "").await;
    let b = TestServer::spawn_on_store(&schema.url, "").await;
    seed_code(&a, "doubt-code-2", "grant-doubt-code-2").await;
    let _cut = proxy.blackout_after_next_commit().await;
    assert_unavailable(redeem(&a, "doubt-code-2", VERIFIER).await).await;
    proxy.refuse(false);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let retries = (0..40).map(|i| {
        let app = if i % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move { redeem(&app, "doubt-code-2", VERIFIER).await.status().as_u16() })
    });
    let mut statuses = Vec::new();
    for retry in retries {
        statuses.push(retry.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 400).count(), 39, "{statuses:?}");
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_redeemed_code_without_doubt_still_revokes_the_grant() {
    let Some(base_url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    let app = TestServer::spawn_on_store(&schema.url, "").await;
    seed_code(&app, "plain-code-1", "grant-plain-code-1").await;
    let response = redeem(&app, "plain-code-1", VERIFIER).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, error) = crate::support::oauth_error(redeem(&app, "plain-code-1", VERIFIER).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    let (status, error) = crate::support::oauth_error(refresh(&app, &refresh_token).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"), "the grant is revoked");
    app.stop().await;
    schema.drop().await;
}

/// Stores a device request of client `tv` that alice approved, as /device would.
async fn seed_approved_device(app: &TestServer, device_code: &str) {
    use tessera_core::decoupled::{Decision, PendingAuthorization};
    let now = tessera_core::Clock::now(app.clock.as_ref());
    let request = PendingAuthorization {
        client_id: "tv".into(),
        scopes: vec!["api1.read".into()],
        resources: Vec::new(),
        decision: Decision::Approved {
            subject: "alice-sub".into(),
            auth_time: now,
            sid: "sid-1".into(),
            amr: Vec::new(),
        },
        expires_at: now + 600,
        user_code: Some(format!("CODE-OF-{device_code}")),
        subject: None,
        binding_message: None,
        ping: None,
        acr_values: Vec::new(),
    };
    let id = tessera_core::device::device_id(device_code);
    let store = &app.provider.store;
    assert!(
        tessera_core::store::DeviceStore::start_device_request(store.as_ref(), &id, &request, now)
            .await
            .unwrap()
    );
}

async fn poll_device(app: &TestServer, device_code: &str) -> reqwest::Response {
    app.post_form(
        "/token",
        Some(("tv", "tv-secret")),
        &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", device_code)],
    )
    .await
}

/// Issue 12 §1, "every other single-use consumption": a device redemption (one delete,
/// as for CIBA and PAR) whose `COMMIT` answer is lost is settled, not left to fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_redemption_whose_commit_answer_is_lost_is_settled_and_answered_200() {
    let Some(base_url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    let proxy = PgProxy::start(upstream_of(&schema.url)).await;
    let app = TestServer::spawn_on_store(&through_proxy(&schema.url, proxy.port), "").await;
    seed_approved_device(&app, "lost-device-1").await;

    let mut cut = proxy.cut_after_next_commit().await;
    let response = poll_device(&app, "lost-device-1").await;
    assert!(cut.try_recv().is_ok(), "the redemption's COMMIT was cut");
    assert_eq!(response.status(), 200, "the committed redemption is answered");
    let body: Value = response.json().await.unwrap();
    assert!(body["access_token"].is_string());
    let (status, error) = crate::support::oauth_error(poll_device(&app, "lost-device-1").await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"), "still redeemed once");
    app.stop().await;
    schema.drop().await;
}

/// When the store cannot tell, the device's next poll, on any instance, gets the
/// tokens once; of 40 parallel polls exactly one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_after_an_in_doubt_device_redemption_gets_tokens_once_on_any_instance() {
    let Some(base_url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    let proxy = PgProxy::start(upstream_of(&schema.url)).await;
    let a = TestServer::spawn_on_store(&through_proxy(&schema.url, proxy.port), "").await;
    let b = TestServer::spawn_on_store(&schema.url, "").await;
    seed_approved_device(&a, "doubt-device-1").await;

    let mut cut = proxy.blackout_after_next_commit().await;
    let started = Instant::now();
    let response = poll_device(&a, "doubt-device-1").await;
    assert!(cut.try_recv().is_ok(), "the redemption's COMMIT was cut ({})", response.status());
    assert!(started.elapsed() < LONGEST, "answered after {:?}", started.elapsed());
    assert_unavailable(response).await;

    // The store is back; A has noted the doubt in it by the time the device polls again.
    proxy.refuse(false);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let polls = (0..40).map(|i| {
        let app = if i % 2 == 0 { b.clone() } else { a.clone() };
        tokio::spawn(async move { poll_device(&app, "doubt-device-1").await.status().as_u16() })
    });
    let mut statuses = Vec::new();
    for poll in polls {
        statuses.push(poll.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 400).count(), 39, "{statuses:?}");
    schema.drop().await;
}

/// Issue 12 §2: a database that swallows connections (a partition, not a refusal) is
/// waited for no longer than `[storage] acquire_timeout`, then 503; the default is 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_never_answers_is_waited_for_no_longer_than_the_acquire_timeout() {
    let Some(base_url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&base_url).await.unwrap();
    let proxy = PgProxy::start(upstream_of(&schema.url)).await;
    let url = through_proxy(&schema.url, proxy.port);
    let quick =
        TestServer::spawn_on_store_with_env(&url, "", &[("TESSERA__STORAGE__ACQUIRE_TIMEOUT", "1s")]).await;
    let default = TestServer::spawn_on_store(&url, "").await;
    for app in [&quick, &default] {
        let (status, _) = crate::support::oauth_error(refresh(app, "no-such-token").await).await;
        assert_eq!(status, 400);
    }
    proxy.swallow(true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (app, least, most) in [
        (&quick, Duration::from_millis(900), Duration::from_millis(1700)),
        (&default, Duration::from_millis(1800), Duration::from_millis(2900)),
    ] {
        // Connections the pool held fail at once when used; then new ones are needed,
        // and those are never answered.
        let mut waited = false;
        for _ in 0..12 {
            let started = Instant::now();
            let response = refresh(app, "no-such-token").await;
            let took = started.elapsed();
            assert!(took < most, "answered after {took:?}, at most {most:?}");
            assert_unavailable(response).await;
            if took >= least {
                waited = true;
                break;
            }
        }
        assert!(waited, "no request waited for a new connection");
    }
    proxy.swallow(false);
    let recovered = wait_for_status(&quick.http, &quick.url("/readyz"), 200, Duration::from_secs(5)).await;
    assert!(recovered < Duration::from_secs(2), "ready again after {recovered:?}");
    quick.stop().await;
    default.stop().await;
    schema.drop().await;
}

/// Issue 12 §4: a database that answers reads but refuses every write (a full disk, a
/// read-only standby) is not ready; once it writes again, it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_503_while_the_store_cannot_write_and_200_once_it_can() {
    use sqlx::Connection as _;
    let Some(cluster) = PgCluster::start().await else { return };
    let app = TestServer::spawn_on_store(&cluster.url(), "").await;
    assert_eq!(app.http.get(app.url("/readyz")).send().await.unwrap().status(), 200);

    let mut admin = sqlx::PgConnection::connect(&cluster.url()).await.unwrap();
    // Every session's default, the server's too, applied by a reload.
    for statement in [
        "SET default_transaction_read_only = off",
        "ALTER SYSTEM SET default_transaction_read_only = on",
        "SELECT pg_reload_conf()",
    ] {
        sqlx::raw_sql(statement).execute(&mut admin).await.unwrap();
    }
    let took = wait_for_status(&app.http, &app.url("/readyz"), 503, Duration::from_secs(3)).await;
    assert!(took < Duration::from_secs(2), "not ready after {took:?}");
    // Reads still work: the server is up, only not ready.
    let discovery = app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(discovery.status(), 200);

    for statement in ["ALTER SYSTEM RESET default_transaction_read_only", "SELECT pg_reload_conf()"] {
        sqlx::raw_sql(statement).execute(&mut admin).await.unwrap();
    }
    let took = wait_for_status(&app.http, &app.url("/readyz"), 200, Duration::from_secs(3)).await;
    assert!(took < Duration::from_secs(2), "still not ready after {took:?}");
    app.stop().await;
}
