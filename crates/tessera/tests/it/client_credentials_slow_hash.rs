//! Shared secrets given as `value` are stored only as salted argon2id PHC strings
//! (issue 11), while the token endpoint stays one SHA-256 per request once a secret
//! has verified: the process remembers, in memory only, the secret that passed.

use tessera_core::secret::SecretHash;

use crate::support::{TestServer, oauth_error};

/// The clients' and resources' documents as the store keeps them (each is stored as
/// its JSON serialization).
async fn stored_documents(app: &TestServer) -> String {
    let store = &app.provider.store;
    let mut all = String::new();
    for (client_id, _) in store.client_sources().await.unwrap() {
        let client = store.client(&client_id).await.unwrap().unwrap();
        all.push_str(&serde_json::to_string(&client).unwrap());
        all.push('\n');
    }
    all.push_str(&serde_json::to_string(&store.resources().await.unwrap()).unwrap());
    all
}

async fn svc_token_status(app: &TestServer, secret: &str) -> reqwest::Response {
    app.post_form("/token", Some(("svc", secret)), &[("grant_type", "client_credentials")]).await
}

#[tokio::test]
async fn a_value_secret_is_stored_as_argon2id_and_the_right_secret_works_repeatedly() {
    let app = TestServer::spawn().await;
    let documents = stored_documents(&app).await;

    let client =
        app.provider.store.client(&tessera_core::model::ClientId("svc".into())).await.unwrap().unwrap();
    let document = serde_json::to_value(&client).unwrap();
    let secret = &document["credentials"][0];
    assert_eq!(secret["kind"], "salted_secret", "{document}");
    let phc = secret["argon2id"].as_str().unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(tessera_core::password::verify_password("svc-secret", phc));
    assert!(documents.contains(phc), "the SQLite document holds the PHC string");

    // No SHA-256 of a `value` secret (clients' or APIs') is stored anywhere.
    for value in ["svc-secret", "web-secret", "api1-secret", "api2-secret"] {
        let fast = SecretHash::of(value);
        assert!(!documents.contains(&fast.to_base64url()), "SHA-256 of {value} stored");
        assert!(!documents.contains(&String::from(tessera_core::secret::StoredSecret::Sha256(fast))));
        assert!(!documents.contains(value), "{value} stored in plain");
    }
    assert!(documents.matches("$argon2id$").count() >= 4, "{documents}");

    for _ in 0..5 {
        assert_eq!(svc_token_status(&app, "svc-secret").await.status(), 200);
    }
    assert_eq!(app.provider.secret_checks.len(), 1, "one slow check, then remembered");

    // The API's `value` secret works at /introspect, through the same path.
    let token = app.svc_token(&[("scope", "api1.read")]).await;
    let token = token["access_token"].as_str().unwrap();
    for _ in 0..2 {
        let response = app.post_form("/introspect", Some(("api1", "api1-secret")), &[("token", token)]).await;
        assert_eq!(response.json::<serde_json::Value>().await.unwrap()["active"], true);
    }
    let response = app.post_form("/introspect", Some(("api1", "api1-secrets")), &[("token", token)]).await;
    assert_eq!(oauth_error(response).await, (401, "invalid_client".to_owned()));
}

#[tokio::test]
async fn a_wrong_secret_is_401_invalid_client_and_is_never_remembered() {
    let app = TestServer::spawn().await;
    let wrong = svc_token_status(&app, "svc-secret-wrong").await;
    assert!(wrong.headers().contains_key("www-authenticate"), "RFC 6749 §5.2: Basic gets WWW-Authenticate");
    assert_eq!(oauth_error(wrong).await, (401, "invalid_client".to_owned()));
    assert!(app.provider.secret_checks.is_empty(), "a wrong secret is never remembered");

    assert_eq!(svc_token_status(&app, "svc-secret").await.status(), 200);
    assert_eq!(app.provider.secret_checks.len(), 1);
    // The remembered right secret admits nothing else, each time.
    for _ in 0..3 {
        let wrong = svc_token_status(&app, "svc-secret-wrong").await;
        assert_eq!(oauth_error(wrong).await, (401, "invalid_client".to_owned()));
    }
    assert_eq!(svc_token_status(&app, "svc-secret").await.status(), 200);
    assert_eq!(app.provider.secret_checks.len(), 1);
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn forty_parallel_wrong_secrets_are_all_refused_with_bounded_memory() {
    let app = std::sync::Arc::new(TestServer::spawn().await);
    let before = rss_kib();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
    };
    let mut burst = tokio::task::JoinSet::new();
    for index in 0..40 {
        let app = app.clone();
        burst.spawn(async move {
            let response = svc_token_status(&app, &format!("junk-{index}")).await;
            let retry_after = response.headers().contains_key("retry-after");
            let (status, error) = oauth_error(response).await;
            (status, error, retry_after)
        });
    }
    let (mut refused, mut busy) = (0, 0);
    while let Some(outcome) = burst.join_next().await {
        match outcome.unwrap() {
            (401, error, _) if error == "invalid_client" => refused += 1,
            // The bounded queue of slow checks is full: RFC 6749 `temporarily_unavailable`.
            (503, error, true) if error == "temporarily_unavailable" => busy += 1,
            other => panic!("a junk secret got {other:?}"),
        }
    }
    sampling.abort();
    assert_eq!(refused + busy, 40);
    assert!(refused >= 1, "some junk was evaluated and refused");
    assert!(app.provider.secret_checks.is_empty(), "no junk secret is remembered");
    // 40 unbounded argon2id checks would need 40 x 19 MiB = 760 MiB at once; the
    // bounded queue runs one per core. Generous slack for tests running beside this one.
    let grown_mib = peak.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(before) / 1024;
    assert!(grown_mib < 300, "RSS grew by {grown_mib} MiB");
    // The right secret still works afterwards.
    assert_eq!(svc_token_status(&app, "svc-secret").await.status(), 200);
}
