//! The store contract on real SQLite and real PostgreSQL.

use std::sync::Arc;

use tessera_core::store::contract;
use tessera_store_sql::SqlStore;

#[tokio::test]
async fn sqlite_store_keeps_the_contract() {
    let dir = std::env::temp_dir().join(format!("tessera-contract-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("contract.db");
    let _ = std::fs::remove_file(&path);
    let store = SqlStore::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    contract::run_all(Arc::new(store.clone())).await;
    store.close().await;
    assert!(path.exists(), "the SQLite file was created");
}

#[tokio::test]
async fn sqlite_store_migrates_an_existing_file_again_without_harm() {
    let path = std::env::temp_dir().join(format!("tessera-remigrate-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    SqlStore::connect(&url).await.unwrap().close().await;
    SqlStore::connect(&url).await.unwrap().close().await;
}

fn temp_sqlite(name: &str) -> (std::path::PathBuf, String) {
    let path = std::env::temp_dir().join(format!("tessera-{name}-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let url = format!("sqlite://{}", path.display());
    (path, url)
}

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The sqlx migrator with the migrations of `backend` up to `last_version`: a store as an
/// earlier Tessera left it.
fn earlier_migrations(backend: Backend, last_version: i64) -> sqlx::migrate::Migrator {
    let backend = match backend {
        Backend::Sqlite => tessera_store_sql::Backend::Sqlite,
        Backend::Postgres => tessera_store_sql::Backend::Postgres,
    };
    tessera_store_sql::testing::migrator_until(backend, last_version)
}

/// A file made by the sqlx migrator (Tessera before the inline SQLite store) opens
/// without migrating again, and keeps its rows.
#[tokio::test]
async fn sqlite_store_adopts_a_file_migrated_by_sqlx() {
    use tessera_core::store::ReplayStore as _;
    let (_, url) = temp_sqlite("from-sqlx");
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&format!("{url}?mode=rwc")).await.unwrap();
    earlier_migrations(Backend::Sqlite, 2).run(&pool).await.unwrap();
    sqlx::query("INSERT INTO replay_cache (key, expires_at) VALUES ('old', 1000)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let store = SqlStore::connect(&url).await.unwrap();
    assert!(!store.remember_once("old", 2_000, 10).await.unwrap(), "the old row is still there");
    assert!(store.remember_once("new", 2_000, 10).await.unwrap());
    store.close().await;
}

/// Two stores on one file (as two processes would be) still see one winner of each
/// single-use value: the file's write lock orders their connections. Starting together,
/// one migrates the new file and the other finds it done.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_stores_sharing_a_file_consume_once() {
    use tessera_core::secret::SecretHash;
    use tessera_core::store::{CodeStore as _, Consumed, PendingGrant, ReplayStore as _};
    let (_, url) = temp_sqlite("two-stores");
    // Both create and migrate the fresh file at once.
    let (a, b) = tokio::join!(SqlStore::connect(&url), SqlStore::connect(&url));
    let stores = [a.unwrap(), b.unwrap()];
    let grant = PendingGrant {
        grant_id: "g-two".into(),
        client_id: "web".into(),
        subject: "a1".into(),
        redirect_uri: None,
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scopes: vec!["openid".into()],
        resources: vec![],
        nonce: None,
        auth_time: 90,
        sid: "sid-1".into(),
        dpop_jkt: None,
        amr: Vec::new(),
        acr: None,
    };
    for round in 0..10 {
        let code = SecretHash::of(&format!("code-two-{round}"));
        stores[0].put_code(&code, &grant, 200).await.unwrap();
        let racers: Vec<_> = (0..50)
            .map(|i| {
                let store = stores[i % 2].clone();
                let key = format!("jti-two-{round}");
                tokio::spawn(async move {
                    (
                        store.consume_code(&code, 100).await.unwrap(),
                        store.remember_once(&key, 200, 100).await.unwrap(),
                    )
                })
            })
            .collect();
        let (mut fresh, mut remembered) = (0, 0);
        for racer in racers {
            let (consumed, first) = racer.await.unwrap();
            match consumed {
                Consumed::Fresh(_) => fresh += 1,
                Consumed::Replayed { grant_id } => assert_eq!(grant_id, "g-two".into()),
                Consumed::Missing => panic!("a racing redemption saw Missing"),
            }
            remembered += usize::from(first);
        }
        assert_eq!((fresh, remembered), (1, 1), "round {round}: one winner of each");
    }
    for store in stores {
        store.close().await;
    }
}

/// The PostgreSQL URL of the test server, from `TESSERA_TEST_POSTGRES` (set by
/// `scripts/test`); the test is skipped with a message when it is unset.
fn postgres_url() -> Option<String> {
    let url = std::env::var("TESSERA_TEST_POSTGRES").ok();
    if url.is_none() {
        eprintln!("TESSERA_TEST_POSTGRES is not set: skipping the PostgreSQL run");
    }
    url
}

#[tokio::test]
async fn postgres_store_keeps_the_contract() {
    let Some(url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&url).await.unwrap();
    let store = SqlStore::connect(&schema.url).await.unwrap();
    contract::run_all(Arc::new(store.clone())).await;
    store.close().await;
    schema.drop().await;
}

#[tokio::test]
async fn postgres_migrations_are_safe_when_instances_start_together() {
    let Some(url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&url).await.unwrap();
    let (a, b) = tokio::join!(SqlStore::connect(&schema.url), SqlStore::connect(&schema.url));
    a.unwrap().close().await;
    b.unwrap().close().await;
    schema.drop().await;
}

#[tokio::test]
async fn postgres_purge_runs_on_many_instances_at_once() {
    use tessera_core::store::{MaintenanceStore as _, ReplayStore as _};
    let Some(url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&url).await.unwrap();
    let store = SqlStore::connect(&schema.url).await.unwrap();
    for i in 0..400 {
        store.remember_once(&format!("k{i}"), 10, 0).await.unwrap();
    }
    let purgers = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut total = 0;
            loop {
                let purged = store.purge_expired(100, 25).await.unwrap();
                if purged == 0 {
                    return total;
                }
                total += purged;
            }
        })
    });
    let mut total = 0;
    for purger in purgers {
        total += purger.await.unwrap();
    }
    assert_eq!(total, 400, "every expired row purged exactly once");
    store.close().await;
    schema.drop().await;
}

/// Migrates a store at `url` (an empty file or schema) to the version before refresh
/// families got their start marker (0004), stores two families the old way (one
/// revoked, row by row, one live), then opens it as the store does today: both keep
/// their state, and the live family, rotated after the upgrade, is revoked for as long
/// as its first token could be used, through purges.
#[expect(clippy::unwrap_used, reason = "a test: a failed expectation is a panic")]
async fn refresh_families_survive_the_family_start_migration(url: &str, backend: Backend) {
    use tessera_core::secret::SecretHash;
    use tessera_core::store::{
        Consumed, GrantStore as _, MaintenanceStore as _, RefreshRecord, RefreshStore as _,
    };
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    earlier_migrations(backend, 3).run(&pool).await.unwrap();
    let record = |grant_id: &str| RefreshRecord {
        grant_id: grant_id.into(),
        client_id: "web".into(),
        subject: "a1".into(),
        scopes: vec!["openid".into(), "offline_access".into()],
        resources: Vec::new(),
        auth_time: 90,
        sid: "sid-1".into(),
        issued_at: 100,
        expires_at: 10_000,
        idle_expires_at: None,
        dpop_jkt: None,
        x5t_s256: None,
        amr: Vec::new(),
        acr: None,
    };
    for (token, grant_id, used_at, revoked) in [
        ("old-a1", "g-old-a", Some(150_i64), 1_i64),
        ("old-a2", "g-old-a", None, 1),
        ("old-b1", "g-old-b", None, 0),
    ] {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, grant_id, document, expires_at, idle_expires_at, used_at, revoked) \
             VALUES ($1, $2, $3, $4, NULL, $5, $6)",
        )
        .bind(SecretHash::of(token).to_base64url())
        .bind(grant_id)
        .bind(serde_json::to_string(&record(grant_id)).unwrap())
        .bind(10_000_i64)
        .bind(used_at)
        .bind(revoked)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query("INSERT INTO revoked_grants (grant_id, expires_at) VALUES ('g-old-a', 10000)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let store = SqlStore::connect(url).await.unwrap();
    let replayed = |grant_id: &str| Consumed::Replayed { grant_id: grant_id.into() };
    assert_eq!(store.refresh_token(&SecretHash::of("old-a2")).await.unwrap(), replayed("g-old-a"));
    let (b1, b2) = (SecretHash::of("old-b1"), SecretHash::of("new-b2"));
    assert_eq!(store.refresh_token(&b1).await.unwrap(), Consumed::Fresh(record("g-old-b")));
    let rotated = store.rotate_refresh_token(&b1, &b2, &record("g-old-b"), 200).await.unwrap();
    assert_eq!(rotated, Consumed::Fresh(()));
    store.revoke_grant(&"g-old-b".into(), 300, 300).await.unwrap();
    while store.purge_expired(5_000, 100).await.unwrap() > 0 {}
    assert_eq!(store.refresh_token(&b2).await.unwrap(), replayed("g-old-b"), "remembered past the purge");
    assert_eq!(store.refresh_token(&SecretHash::of("old-a1")).await.unwrap(), replayed("g-old-a"));
    store.close().await;
}

#[tokio::test]
async fn sqlite_refresh_families_survive_the_family_start_migration() {
    let (_, url) = temp_sqlite("family-start");
    refresh_families_survive_the_family_start_migration(&format!("{url}?mode=rwc"), Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_refresh_families_survive_the_family_start_migration() {
    let Some(url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&url).await.unwrap();
    refresh_families_survive_the_family_start_migration(&schema.url, Backend::Postgres).await;
    schema.drop().await;
}

/// Upkeep's purge removes device and CIBA requests once their rows expire, and no live one.
#[expect(clippy::unwrap_used, reason = "a test: a failed expectation is a panic")]
async fn expired_decoupled_requests_are_purged(url: &str) {
    use tessera_core::store::{MaintenanceStore as _, PollStore as _};
    let store = SqlStore::connect(url).await.unwrap();
    let document = serde_json::json!({ "client_id": "tv" });
    for i in 0..3 {
        store.put_polled(&format!("device:old-{i}"), "pending", &document, 10).await.unwrap();
    }
    store.put_polled("ciba:live", "approved", &document, 10_000).await.unwrap();
    while store.purge_expired(5_000, 2).await.unwrap() > 0 {}
    store.close().await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT key FROM decoupled_requests").fetch_all(&pool).await.unwrap();
    assert_eq!(keys, ["ciba:live"]);
    pool.close().await;
}

#[tokio::test]
async fn sqlite_expired_decoupled_requests_are_purged() {
    let (_, url) = temp_sqlite("decoupled-purge");
    expired_decoupled_requests_are_purged(&format!("{url}?mode=rwc")).await;
}

#[tokio::test]
async fn postgres_expired_decoupled_requests_are_purged() {
    let Some(url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&url).await.unwrap();
    expired_decoupled_requests_are_purged(&schema.url).await;
    schema.drop().await;
}

/// Migration 0012 gives device and CIBA requests their own table with a state column:
/// a store an earlier release filled keeps every live request, in the state its
/// decision says, decidable once and polled as before; the index documents and other
/// flows stay where they were; a damaged request is moved as pending, never taken.
#[expect(clippy::unwrap_used, reason = "a test: a failed expectation is a panic")]
async fn decoupled_requests_move_to_their_own_table(url: &str, backend: Backend) {
    use tessera_core::store::{PollRules, PollStore as _, Polled, RequestStore as _};
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    earlier_migrations(backend, 10).run(&pool).await.unwrap();
    let pending = r#"{"client_id":"tv","decision":{"status":"pending"}}"#;
    let approved = r#"{"client_id":"bank","decision":{"status":"approved","subject":"alice"}}"#;
    for (key, document) in [
        ("device:d-pending", pending),
        ("ciba:c-approved", approved),
        ("device:d-damaged", r#"{"client_id":"tv","decision":7}"#),
        ("device-user-code:BCDFGHJK", r#"{"device":"device:d-pending"}"#),
        ("ciba-user:alice:c-approved", r#"{"key":"ciba:c-approved"}"#),
        ("interaction:i-1", r#"{"state":"x"}"#),
    ] {
        sqlx::query("INSERT INTO pending_requests (key, document, expires_at) VALUES ($1, $2, $3)")
            .bind(key)
            .bind(document)
            .bind(10_000_i64)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;

    let store = SqlStore::connect(url).await.unwrap();
    let now = 100;
    for key in ["device:d-pending", "ciba:c-approved", "device:d-damaged"] {
        assert_eq!(store.request(key, now).await.unwrap(), None, "{key} left pending_requests");
        assert!(store.polled(key, now).await.unwrap().is_some(), "{key} is in its own table");
    }
    for key in ["device-user-code:BCDFGHJK", "ciba-user:alice:c-approved", "interaction:i-1"] {
        assert!(store.request(key, now).await.unwrap().is_some(), "{key} stayed");
    }
    let rules = |owner: &str| PollRules {
        owner: serde_json::json!({ "client_id": owner }),
        kept_after_expiry: 3600,
        decided: vec!["approved".into(), "denied".into()],
        interval: 5,
        step: 5,
        pace_until: 20_000,
    };
    let approved: serde_json::Value = serde_json::from_str(approved).unwrap();
    assert_eq!(store.poll("ciba:c-approved", now, &rules("bank")).await.unwrap(), Polled::Taken(approved));
    let pending: serde_json::Value = serde_json::from_str(pending).unwrap();
    assert_eq!(store.poll("device:d-pending", now, &rules("tv")).await.unwrap(), Polled::Waiting(pending));
    let decided = serde_json::json!({ "client_id": "tv", "decision": { "status": "denied" } });
    assert!(store.decide_polled("device:d-pending", "denied", &decided, now).await.unwrap());
    assert!(!store.decide_polled("device:d-pending", "approved", &decided, now).await.unwrap(), "once");
    let damaged = store.poll("device:d-damaged", now, &rules("tv")).await.unwrap();
    assert!(matches!(damaged, Polled::Waiting(_)), "a damaged request is not taken: {damaged:?}");
    store.close().await;
}

#[tokio::test]
async fn sqlite_decoupled_requests_move_to_their_own_table() {
    let (_, url) = temp_sqlite("decoupled-move");
    decoupled_requests_move_to_their_own_table(&format!("{url}?mode=rwc"), Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_decoupled_requests_move_to_their_own_table() {
    let Some(url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&url).await.unwrap();
    decoupled_requests_move_to_their_own_table(&schema.url, Backend::Postgres).await;
    schema.drop().await;
}

/// Migration 0011 moves PostgreSQL to its own types (JSONB, TIMESTAMPTZ, BOOLEAN): a
/// database an earlier release filled (text JSON, unix seconds, 0/1 flags) keeps every
/// live row, readable and usable by the store as it is now.
#[tokio::test]
#[expect(clippy::too_many_lines, reason = "one row in every table, then each read back")]
async fn postgres_native_types_migration_keeps_live_rows() {
    use tessera_core::secret::SecretHash;
    use tessera_core::store::{
        CodeStore as _, ConsentStore as _, Consumed, FactorStore as _, KeyStore as _, PendingGrant,
        PollStore as _, RefreshRecord, RefreshStore as _, ReplayStore as _, RequestStore as _, Session,
        SessionStore as _, ThrottleStore as _, TokenStore as _, UserStore as _,
    };
    let Some(url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&url).await.unwrap();
    let pool = sqlx::PgPool::connect(&schema.url).await.unwrap();
    tessera_store_sql::testing::migrator_until(tessera_store_sql::Backend::Postgres, 10)
        .run(&pool)
        .await
        .unwrap();

    let grant = PendingGrant {
        grant_id: "g-code".into(),
        client_id: "web".into(),
        subject: "alice".into(),
        redirect_uri: Some("https://app/cb".into()),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scopes: vec!["openid".into()],
        resources: Vec::new(),
        nonce: None,
        auth_time: 90,
        sid: "sid-1".into(),
        dpop_jkt: None,
        amr: vec!["pwd".into()],
        acr: None,
    };
    let refresh = RefreshRecord {
        grant_id: "g-refresh".into(),
        client_id: "web".into(),
        subject: "alice".into(),
        scopes: vec!["openid".into(), "offline_access".into()],
        resources: Vec::new(),
        auth_time: 90,
        sid: "sid-1".into(),
        issued_at: 100,
        expires_at: 10_000,
        idle_expires_at: Some(5_000),
        dpop_jkt: None,
        x5t_s256: None,
        amr: Vec::new(),
        acr: None,
    };
    let session = Session {
        subject: "alice".into(),
        username: "alice".into(),
        auth_time: 90,
        sid: "sid-1".into(),
        expires_at: 10_000,
        amr: vec!["pwd".into()],
        verified_at: Some(90),
    };
    let statements: Vec<(&str, Vec<Param>)> = vec![
        (
            "INSERT INTO users (username, subject, password_hash, claims) VALUES ($1, $2, $3, $4)",
            vec![s("alice"), s("alice"), s("$argon2id$x"), s(r#"{"name":"Alice"}"#)],
        ),
        (
            "INSERT INTO signing_keys (generation, kid, algorithm, private_key, sealed, created_at, \
             activates_at, retires_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            vec![i(1), s("k1"), s("ES256"), b(&[1, 2, 3]), i(0), i(100), i(100), i(8_000), i(9_000)],
        ),
        ("INSERT INTO replay_cache (key, expires_at) VALUES ($1, $2)", vec![s("jti-1"), i(10_000)]),
        (
            "INSERT INTO reference_tokens (token_hash, jti, client_id, subject, scope, audience, issued_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![
                s(&SecretHash::of("ref-1").to_base64url()),
                s("jti-ref"),
                s("svc"),
                s("svc"),
                s(r#"["api.read"]"#),
                s(r#"["https://api"]"#),
                i(100),
                i(10_000),
            ],
        ),
        ("INSERT INTO revoked_jtis (jti, expires_at) VALUES ($1, $2)", vec![s("jti-revoked"), i(10_000)]),
        (
            "INSERT INTO authorization_codes (code_hash, grant_id, document, expires_at) VALUES ($1, $2, $3, $4)",
            vec![s(&SecretHash::of("code-1").to_base64url()), s("g-code"), s(&text(&grant)), i(10_000)],
        ),
        (
            "INSERT INTO refresh_tokens (token_hash, grant_id, document, expires_at, idle_expires_at, \
             starts_family) VALUES ($1, $2, $3, $4, $5, 1)",
            vec![
                s(&SecretHash::of("rt-1").to_base64url()),
                s("g-refresh"),
                s(&text(&refresh)),
                i(10_000),
                i(5_000),
            ],
        ),
        ("INSERT INTO revoked_grants (grant_id, expires_at) VALUES ($1, $2)", vec![s("g-gone"), i(10_000)]),
        (
            "INSERT INTO sessions (session_hash, document, expires_at) VALUES ($1, $2, $3)",
            vec![s(&SecretHash::of("cookie-1").to_base64url()), s(&text(&session)), i(10_000)],
        ),
        (
            "INSERT INTO pending_requests (key, document, expires_at) VALUES ($1, $2, $3)",
            vec![s("interaction:abc"), s(r#"{"state":"pending"}"#), i(10_000)],
        ),
        (
            "INSERT INTO pending_requests (key, document, expires_at) VALUES ($1, $2, $3)",
            vec![s("device:d1"), s(r#"{"client_id":"tv","decision":{"status":"pending"}}"#), i(10_000)],
        ),
        (
            "INSERT INTO consents (subject, client_id, scopes) VALUES ($1, $2, $3)",
            vec![s("alice"), s("web"), s(r#"["openid","profile"]"#)],
        ),
        (
            "INSERT INTO login_failures (key, failures, window_ends_at) VALUES ($1, $2, $3)",
            vec![s("login:alice"), i(3), i(10_000)],
        ),
        (
            "INSERT INTO totp_factors (subject, secret, sealed, confirmed, last_step, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            vec![s("alice"), b(&[9; 20]), i(0), i(1), i(77), i(100)],
        ),
        (
            "INSERT INTO passkeys (credential_id, subject, name, credential, created_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
            vec![s("cred-1"), s("alice"), s("laptop"), s(r#"{"counter":1}"#), i(100)],
        ),
        (
            "INSERT INTO poll_pace (key, last_poll, poll_interval, slowed, expires_at) VALUES ($1, $2, $3, 0, $4)",
            vec![s("device:d1"), i(1_000), i(5), i(10_000)],
        ),
    ];
    for (statement, params) in statements {
        let mut query = sqlx::query(statement);
        for param in params {
            query = match param {
                Param::Text(value) => query.bind(value),
                Param::Int(value) => query.bind(value),
                Param::Bytes(value) => query.bind(value),
            };
        }
        query.execute(&pool).await.unwrap();
    }
    pool.close().await;

    let store = SqlStore::connect(&schema.url).await.unwrap();
    let now = 1_002;
    let alice = store.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(alice.claims["name"], "Alice");
    let keys = store.signing_keys().await.unwrap();
    assert_eq!((keys[0].sealed, keys[0].created_at, keys[0].expires_at), (false, 100, 9_000));
    assert!(!store.remember_once("jti-1", 20_000, now).await.unwrap(), "the live mark still holds");
    let reference = store.reference_token(&SecretHash::of("ref-1"), now).await.unwrap().unwrap();
    assert_eq!((reference.scope, reference.expires_at), (vec!["api.read".to_owned()], 10_000));
    assert!(store.is_revoked("jti-revoked", None).await.unwrap());
    assert!(store.is_revoked("other", Some(&"g-gone".into())).await.unwrap());
    assert_eq!(store.consume_code(&SecretHash::of("code-1"), now).await.unwrap(), Consumed::Fresh(grant));
    assert_eq!(store.refresh_token(&SecretHash::of("rt-1")).await.unwrap(), Consumed::Fresh(refresh.clone()));
    let successor = RefreshRecord { issued_at: now, ..refresh };
    let (old, new) = (SecretHash::of("rt-1"), SecretHash::of("rt-2"));
    let rotated = store.rotate_refresh_token(&old, &new, &successor, now).await.unwrap();
    assert_eq!(rotated, Consumed::Fresh(()), "the migrated token rotates");
    assert_eq!(store.session(&SecretHash::of("cookie-1"), now).await.unwrap(), Some(session));
    assert_eq!(store.sessions_of("alice", now).await.unwrap().len(), 1, "found by the rebuilt index");
    let document = store.request("interaction:abc", now).await.unwrap().unwrap();
    assert_eq!(document["state"], "pending");
    assert_eq!(store.consented_scopes("alice", "web").await.unwrap(), ["openid", "profile"]);
    assert_eq!(store.failures("login:alice", now).await.unwrap(), 3);
    let totp = store.totp("alice").await.unwrap().unwrap();
    assert_eq!((totp.confirmed, totp.sealed, totp.last_step, totp.created_at), (true, false, 77, 100));
    let passkey = store.passkey("cred-1").await.unwrap().unwrap();
    assert_eq!((passkey.credential.as_str(), passkey.created_at), (r#"{"counter":1}"#, 100));
    let rules = tessera_core::store::PollRules {
        owner: serde_json::json!({ "client_id": "tv" }),
        kept_after_expiry: 3600,
        decided: vec!["approved".into()],
        interval: 5,
        step: 5,
        pace_until: 10_000,
    };
    // Migration 0012 moved the device request to its own table, pending as its decision says.
    assert_eq!(store.request("device:d1", now).await.unwrap(), None, "moved out of pending_requests");
    let moved = store.polled("device:d1", now).await.unwrap().unwrap();
    assert_eq!(moved["decision"]["status"], "pending");
    let approved = serde_json::json!({ "client_id": "tv", "decision": { "status": "approved" } });
    assert!(store.decide_polled("device:d1", "approved", &approved, now).await.unwrap(), "it was pending");
    let polled = store.poll("device:d1", now, &rules).await.unwrap();
    // Polled 2 s after the migrated poll, inside its 5 s interval.
    assert_eq!(polled, tessera_core::store::Polled::TooSoon { interval: 10 });
    store.close().await;
    schema.drop().await;
}

enum Param {
    Text(String),
    Int(i64),
    Bytes(Vec<u8>),
}

fn s(value: &str) -> Param {
    Param::Text(value.to_owned())
}

fn i(value: i64) -> Param {
    Param::Int(value)
}

fn b(value: &[u8]) -> Param {
    Param::Bytes(value.to_vec())
}

/// A value as an earlier release wrote it: JSON text.
#[expect(clippy::unwrap_used, reason = "a test: a failed expectation is a panic")]
fn text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap()
}

/// A code's redemption on PostgreSQL waits for no other code's row lock: while another
/// transaction holds one code's row, its redemption waits alone, and a redemption of
/// another code (which the store may carry in the same statement) is answered at once.
#[tokio::test]
async fn postgres_a_code_held_by_another_transaction_holds_up_no_other_redemption() {
    use sqlx::Connection as _;
    use tessera_core::secret::{Secret, SecretHash};
    use tessera_core::store::{CodePresentation, CodeStore as _, Consumed, PendingGrant};
    let Some(url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&url).await.unwrap();
    let store = SqlStore::connect(&schema.url).await.unwrap();
    let grant = |grant_id: &str| PendingGrant {
        grant_id: grant_id.into(),
        client_id: "web".into(),
        subject: "a1".into(),
        redirect_uri: Some("https://app.example/cb".into()),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scopes: vec!["openid".into()],
        resources: vec![],
        nonce: None,
        auth_time: 90,
        sid: "sid-1".into(),
        dpop_jkt: None,
        amr: vec!["pwd".into()],
        acr: None,
    };
    let presented = CodePresentation {
        client_id: "web".into(),
        redirect_uri: Some("https://app.example/cb".into()),
        code_verifier: Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        dpop_jkt: None,
    };
    let (held, free) = (SecretHash::of("code-held"), SecretHash::of("code-free"));
    store.put_code(&held, &grant("g-held"), 200).await.unwrap();
    store.put_code(&free, &grant("g-free"), 200).await.unwrap();

    let mut holder = sqlx::PgConnection::connect(&schema.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT 1 FROM authorization_codes WHERE code_hash = $1 FOR UPDATE")
        .bind(held.to_base64url())
        .execute(&mut holder)
        .await
        .unwrap();
    let waiting = {
        let (store, presented) = (store.clone(), presented.clone());
        tokio::spawn(async move { store.redeem_code(&held, &presented, 100).await.unwrap() })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let answered =
        tokio::time::timeout(std::time::Duration::from_secs(2), store.redeem_code(&free, &presented, 100))
            .await
            .expect("another code's lock held this redemption up");
    assert_eq!(answered.unwrap(), Ok(Consumed::Fresh(grant("g-free"))));
    assert!(!waiting.is_finished(), "the held code's redemption waits for its row");

    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    assert_eq!(waiting.await.unwrap(), Ok(Consumed::Fresh(grant("g-held"))));
    store.close().await;
    schema.drop().await;
}

/// The same for refresh rotations: while another transaction holds one token's row,
/// its rotation waits alone and another token's rotation is answered at once.
#[tokio::test]
async fn postgres_a_refresh_token_held_by_another_transaction_holds_up_no_other_rotation() {
    use sqlx::Connection as _;
    use tessera_core::secret::SecretHash;
    use tessera_core::store::{Consumed, RefreshRecord, RefreshStore as _};
    let Some(url) = postgres_url() else { return };
    let schema = tessera_store_sql::testing::fresh_postgres_schema(&url).await.unwrap();
    let store = SqlStore::connect(&schema.url).await.unwrap();
    let record = |grant_id: &str, issued_at: i64| RefreshRecord {
        grant_id: grant_id.into(),
        client_id: "web".into(),
        subject: "a1".into(),
        scopes: vec!["openid".into(), "offline_access".into()],
        resources: vec![],
        auth_time: 90,
        sid: "sid-1".into(),
        issued_at,
        expires_at: 1_000,
        idle_expires_at: None,
        dpop_jkt: None,
        x5t_s256: None,
        amr: vec!["pwd".into()],
        acr: None,
    };
    let (held, free) = (SecretHash::of("rt-held"), SecretHash::of("rt-free"));
    store.put_refresh_token(&held, &record("g-held", 100)).await.unwrap();
    store.put_refresh_token(&free, &record("g-free", 100)).await.unwrap();

    let mut holder = sqlx::PgConnection::connect(&schema.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT 1 FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE")
        .bind(held.to_base64url())
        .execute(&mut holder)
        .await
        .unwrap();
    let waiting = {
        let (store, next) = (store.clone(), record("g-held", 200));
        tokio::spawn(async move {
            store.rotate_refresh_token(&held, &SecretHash::of("rt-held-next"), &next, 200).await.unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (free_next, free_successor) = (SecretHash::of("rt-free-next"), record("g-free", 200));
    let rotation = store.rotate_refresh_token(&free, &free_next, &free_successor, 200);
    let answered = tokio::time::timeout(std::time::Duration::from_secs(2), rotation)
        .await
        .expect("another token's lock held this rotation up");
    assert_eq!(answered.unwrap(), Consumed::Fresh(()));
    assert!(!waiting.is_finished(), "the held token's rotation waits for its row");

    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    assert_eq!(waiting.await.unwrap(), Consumed::Fresh(()));
    assert_eq!(
        store.refresh_token(&SecretHash::of("rt-held-next")).await.unwrap(),
        Consumed::Fresh(record("g-held", 200))
    );
    store.close().await;
    schema.drop().await;
}
