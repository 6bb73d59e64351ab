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

/// The sqlx migrator with the first `count` migrations of `backend`: a store as an
/// earlier Tessera left it.
fn earlier_migrations(backend: Backend, count: usize) -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let files = match backend {
        Backend::Sqlite => [
            include_str!("../migrations/sqlite/0001_initial.sql"),
            include_str!("../migrations/sqlite/0002_sign_in.sql"),
            include_str!("../migrations/sqlite/0003_grant_carrying_jti.sql"),
        ],
        Backend::Postgres => [
            include_str!("../migrations/postgres/0001_initial.sql"),
            include_str!("../migrations/postgres/0002_sign_in.sql"),
            include_str!("../migrations/postgres/0003_grant_carrying_jti.sql"),
        ],
    };
    let descriptions = ["initial", "sign_in", "grant_carrying_jti"];
    Migrator::with_migrations(
        (1..)
            .zip(descriptions.into_iter().zip(files))
            .take(count)
            .map(|(version, (description, sql))| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(sql),
                    false,
                )
            })
            .collect(),
    )
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
                Consumed::Replayed { grant_id } => assert_eq!(grant_id, "g-two"),
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
    store.revoke_grant("g-old-b", 300, 300).await.unwrap();
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
