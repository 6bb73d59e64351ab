//! The store contract: every backend runs these checks (`MemoryStore` in core's tests,
#![expect(clippy::unwrap_used, reason = "a test suite: a failed expectation is a panic")]
//! SQLite and PostgreSQL in `tessera-store-sql`). Each takes a fresh, empty store.

use std::sync::Arc;

use super::{Store, StoredKey, TokenRecord};
use crate::catalog::Resources;
use crate::model::{ApiResource, ApiScope, ClientId, User};
use crate::secret::SecretHash;
use crate::test_support::service_client;

/// Runs every check in order against one fresh store. Panics on the first failure.
pub async fn run_all(store: Arc<dyn Store>) {
    clients_round_trip(store.as_ref()).await;
    resources_round_trip(store.as_ref()).await;
    users_round_trip(store.as_ref()).await;
    key_generation_is_claimed_once(store.as_ref()).await;
    replay_cache_admits_a_key_once(store.clone()).await;
    reference_tokens_resolve_until_expiry_or_revocation(store.as_ref()).await;
    revoked_jtis_are_remembered(store.as_ref()).await;
    purge_removes_only_expired_rows_in_batches(store.as_ref()).await;
}

/// Clients are stored, replaced by id, and unknown ids are `None`.
pub async fn clients_round_trip(store: &dyn Store) {
    let mut client = service_client("svc", &["api1.read"]);
    store.put_clients(std::slice::from_ref(&client)).await.unwrap();
    assert_eq!(store.client(&ClientId("svc".into())).await.unwrap(), Some(client.clone()));
    client.client_name = "renamed".into();
    store.put_clients(std::slice::from_ref(&client)).await.unwrap();
    assert_eq!(store.client(&ClientId("svc".into())).await.unwrap().unwrap().client_name, "renamed");
    assert_eq!(store.client(&ClientId("nobody".into())).await.unwrap(), None);
}

/// The resource set is replaced as a whole.
pub async fn resources_round_trip(store: &dyn Store) {
    assert_eq!(store.resources().await.unwrap(), Resources::default());
    let resources = Resources {
        api_scopes: vec![ApiScope { name: "a.read".into(), display_name: "A".into() }],
        api_resources: vec![ApiResource {
            name: "a".into(),
            display_name: "A".into(),
            scopes: vec!["a.read".into()],
            secrets: vec![SecretHash::of("s")],
        }],
        identity_resources: vec![],
    };
    store.put_resources(&resources).await.unwrap();
    assert_eq!(store.resources().await.unwrap(), resources);
}

/// Users are found by username and replaced by username.
pub async fn users_round_trip(store: &dyn Store) {
    let mut alice = User {
        subject: "a1".into(),
        username: "alice".into(),
        password_hash: "$argon2id$x".into(),
        claims: serde_json::json!({ "name": "Alice" }).as_object().cloned().unwrap_or_default(),
    };
    store.put_user(&alice).await.unwrap();
    alice.password_hash = "$argon2id$y".into();
    store.put_user(&alice).await.unwrap();
    assert_eq!(store.user_by_username("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.user_by_username("bob").await.unwrap(), None);
    assert_eq!(store.users().await.unwrap(), vec![alice]);
}

fn key(generation: i64, kid: &str) -> StoredKey {
    StoredKey {
        generation,
        kid: kid.into(),
        algorithm: "ES256".into(),
        private_key: vec![1, 2, 3, 0, 255],
        sealed: true,
        created_at: 10,
        activates_at: 20,
        retires_at: 30,
        expires_at: 40,
    }
}

/// Of two instances inserting the same generation, exactly one wins.
pub async fn key_generation_is_claimed_once(store: &dyn Store) {
    assert!(store.insert_signing_key(&key(1, "k1")).await.unwrap());
    assert!(!store.insert_signing_key(&key(1, "k1-other")).await.unwrap());
    assert!(store.insert_signing_key(&key(2, "k2")).await.unwrap());
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys, vec![key(1, "k1"), key(2, "k2")]);
}

/// A replay key is admitted once, even by 50 racing calls; again after it expired.
pub async fn replay_cache_admits_a_key_once(store: Arc<dyn Store>) {
    let attempts = (0..50).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.remember_once("jti-race", 1_000, 100).await.unwrap() })
    });
    let mut admitted = 0;
    for attempt in attempts {
        admitted += usize::from(attempt.await.unwrap());
    }
    assert_eq!(admitted, 1, "exactly one racing call is admitted");
    assert!(!store.remember_once("jti-race", 1_000, 999).await.unwrap());
    assert!(store.remember_once("jti-race", 2_000, 1_000).await.unwrap(), "admitted again once expired");
    assert!(store.remember_once("jti-other", 1_000, 100).await.unwrap());
}

fn record(jti: &str, expires_at: i64) -> TokenRecord {
    TokenRecord {
        jti: jti.into(),
        client_id: "svc".into(),
        subject: "svc".into(),
        scope: vec!["a.read".into(), "a.write".into()],
        audience: vec!["a".into()],
        issued_at: 100,
        expires_at,
    }
}

/// Reference tokens are found by hash while unexpired, and gone once revoked.
pub async fn reference_tokens_resolve_until_expiry_or_revocation(store: &dyn Store) {
    let hash = SecretHash::of("opaque-1");
    store.put_reference_token(&hash, &record("j1", 200)).await.unwrap();
    assert_eq!(store.reference_token(&hash, 199).await.unwrap(), Some(record("j1", 200)));
    assert_eq!(store.reference_token(&hash, 200).await.unwrap(), None);
    assert_eq!(store.reference_token(&SecretHash::of("other"), 150).await.unwrap(), None);
    assert!(store.revoke_reference_token(&hash).await.unwrap());
    assert!(!store.revoke_reference_token(&hash).await.unwrap());
    assert_eq!(store.reference_token(&hash, 150).await.unwrap(), None);
}

/// A revoked `jti` is remembered.
pub async fn revoked_jtis_are_remembered(store: &dyn Store) {
    assert!(!store.is_jti_revoked("j-revoked").await.unwrap());
    store.revoke_jti("j-revoked", 500).await.unwrap();
    store.revoke_jti("j-revoked", 500).await.unwrap();
    assert!(store.is_jti_revoked("j-revoked").await.unwrap());
}

/// Purging deletes expired rows only, at most `batch` of each kind per call.
pub async fn purge_removes_only_expired_rows_in_batches(store: &dyn Store) {
    for i in 0..5 {
        store.remember_once(&format!("purge-{i}"), 10, 0).await.unwrap();
        store.revoke_jti(&format!("purge-jti-{i}"), 10).await.unwrap();
    }
    store.remember_once("keep", 10_000, 0).await.unwrap();
    store.put_reference_token(&SecretHash::of("old"), &record("old", 10)).await.unwrap();
    store.put_reference_token(&SecretHash::of("live"), &record("live", 10_000)).await.unwrap();
    let first = store.purge_expired(5_000, 2).await.unwrap();
    assert!(first >= 4, "a batch of two per kind, got {first}");
    let mut total = first;
    loop {
        let purged = store.purge_expired(5_000, 2).await.unwrap();
        if purged == 0 {
            break;
        }
        total += purged;
    }
    // 5 replay keys + 5 jtis + 1 reference token + the contract's earlier rows that expired.
    assert!(total >= 11, "purged {total}");
    assert!(!store.remember_once("keep", 10_000, 5_000).await.unwrap(), "live replay key kept");
    assert!(!store.is_jti_revoked("purge-jti-0").await.unwrap());
    assert!(store.reference_token(&SecretHash::of("live"), 5_000).await.unwrap().is_some());
    assert!(store.signing_keys().await.unwrap().is_empty(), "keys past expires_at are purged");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn memory_store_keeps_the_contract() {
        run_all(Arc::new(MemoryStore::default())).await;
    }
}
