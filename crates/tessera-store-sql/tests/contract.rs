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
