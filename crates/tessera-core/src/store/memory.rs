//! An in-memory store for unit tests: the same contract as the SQL backends.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::{
    ClientStore, KeyStore, MaintenanceStore, ReplayStore, ResourceStore, StoreResult, StoredKey, TokenRecord,
    TokenStore, UserStore,
};
use crate::Timestamp;
use crate::catalog::Resources;
use crate::model::{Client, ClientId, User};
use crate::secret::SecretHash;

#[derive(Default)]
struct State {
    clients: HashMap<ClientId, Client>,
    resources: Resources,
    users: HashMap<String, User>,
    keys: Vec<StoredKey>,
    replay: HashMap<String, Timestamp>,
    reference_tokens: HashMap<SecretHash, TokenRecord>,
    revoked_jtis: HashMap<String, Timestamp>,
}

/// Everything in one mutex: each call is atomic.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl ClientStore for MemoryStore {
    async fn client(&self, client_id: &ClientId) -> StoreResult<Option<Client>> {
        Ok(self.state().clients.get(client_id).cloned())
    }
    async fn put_clients(&self, clients: &[Client]) -> StoreResult<()> {
        let mut state = self.state();
        for client in clients {
            state.clients.insert(client.client_id.clone(), client.clone());
        }
        Ok(())
    }
}

#[async_trait]
impl ResourceStore for MemoryStore {
    async fn put_resources(&self, resources: &Resources) -> StoreResult<()> {
        self.state().resources = resources.clone();
        Ok(())
    }
    async fn resources(&self) -> StoreResult<Resources> {
        Ok(self.state().resources.clone())
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn put_user(&self, user: &User) -> StoreResult<()> {
        self.state().users.insert(user.username.clone(), user.clone());
        Ok(())
    }
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        Ok(self.state().users.get(username).cloned())
    }
    async fn users(&self) -> StoreResult<Vec<User>> {
        let mut users: Vec<User> = self.state().users.values().cloned().collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(users)
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let mut keys = self.state().keys.clone();
        keys.sort_by_key(|key| key.generation);
        Ok(keys)
    }
    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<bool> {
        let mut state = self.state();
        if state.keys.iter().any(|k| k.generation == key.generation || k.kid == key.kid) {
            return Ok(false);
        }
        state.keys.push(key.clone());
        Ok(true)
    }
}

#[async_trait]
impl ReplayStore for MemoryStore {
    async fn remember_once(&self, key: &str, expires: Timestamp, now: Timestamp) -> StoreResult<bool> {
        let mut state = self.state();
        if state.replay.get(key).is_some_and(|&until| until > now) {
            return Ok(false);
        }
        state.replay.insert(key.to_owned(), expires);
        Ok(true)
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn put_reference_token(&self, hash: &SecretHash, record: &TokenRecord) -> StoreResult<()> {
        self.state().reference_tokens.insert(*hash, record.clone());
        Ok(())
    }
    async fn reference_token(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<TokenRecord>> {
        Ok(self.state().reference_tokens.get(hash).filter(|r| r.expires_at > now).cloned())
    }
    async fn revoke_reference_token(&self, hash: &SecretHash) -> StoreResult<bool> {
        Ok(self.state().reference_tokens.remove(hash).is_some())
    }
    async fn revoke_jti(&self, jti: &str, expires: Timestamp) -> StoreResult<()> {
        self.state().revoked_jtis.insert(jti.to_owned(), expires);
        Ok(())
    }
    async fn is_jti_revoked(&self, jti: &str) -> StoreResult<bool> {
        Ok(self.state().revoked_jtis.contains_key(jti))
    }
}

#[async_trait]
impl MaintenanceStore for MemoryStore {
    async fn purge_expired(&self, now: Timestamp, batch: u32) -> StoreResult<u64> {
        let mut state = self.state();
        let limit = batch as usize;
        let mut purged = 0u64;
        let mut purge = |map_keys: Vec<String>| -> Vec<String> {
            let taken: Vec<String> = map_keys.into_iter().take(limit).collect();
            purged += taken.len() as u64;
            taken
        };
        let replay: Vec<String> =
            state.replay.iter().filter(|(_, t)| **t <= now).map(|(k, _)| k.clone()).collect();
        for key in purge(replay) {
            state.replay.remove(&key);
        }
        let revoked: Vec<String> =
            state.revoked_jtis.iter().filter(|(_, t)| **t <= now).map(|(k, _)| k.clone()).collect();
        for key in purge(revoked) {
            state.revoked_jtis.remove(&key);
        }
        let before = state.reference_tokens.len() + state.keys.len();
        let mut budget = limit;
        state.reference_tokens.retain(|_, record| {
            let keep = record.expires_at > now || budget == 0;
            if !keep {
                budget -= 1;
            }
            keep
        });
        let mut budget = limit;
        state.keys.retain(|key| {
            let keep = key.expires_at > now || budget == 0;
            if !keep {
                budget -= 1;
            }
            keep
        });
        purged += (before - state.reference_tokens.len() - state.keys.len()) as u64;
        Ok(purged)
    }
    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}
