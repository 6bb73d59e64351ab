//! An in-memory store for unit tests: the same contract as the SQL backends.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::Source;
use super::{
    ClientStore, CodeStore, ConsentStore, Consumed, GrantStore, KeyStore, MaintenanceStore, PendingGrant,
    RefreshRecord, RefreshStore, ReplayStore, RequestStore, ResourceStore, SUCCESSOR_OUTSIDE_FAMILY,
    SecretStore, Session, SessionStore, StoreError, StoreResult, StoredKey, ThrottleStore, TokenRecord,
    TokenStore, UserStore,
};
use super::{
    FactorStore, PENDING, PasskeyRecord, PollRules, PollStore, Polled, TotpFactor, is_decided, unpaced_answer,
};
use crate::Timestamp;
use crate::catalog::Resources;
use crate::model::{Client, ClientId, GrantId, User};
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
    codes: HashMap<SecretHash, StoredCode>,
    refresh_tokens: HashMap<SecretHash, StoredRefresh>,
    /// Access token `jti` -> (grant, expiry).
    /// Revoked grant -> when its last known artefact expires.
    revoked_grants: HashMap<GrantId, Timestamp>,
    sessions: HashMap<SecretHash, Session>,
    requests: HashMap<String, (serde_json::Value, Timestamp)>,
    /// Device and CIBA requests: key -> (state, document, expiry).
    polled: HashMap<String, (String, serde_json::Value, Timestamp)>,
    consents: HashMap<(String, String), Vec<String>>,
    /// Key -> (failures, end of window).
    failures: HashMap<String, (u32, Timestamp)>,
    secrets: HashMap<String, Vec<u8>>,
    /// Where each client came from; absent means `Config`.
    client_sources: HashMap<ClientId, Source>,
    /// Where each user came from; absent means `Cli`.
    user_sources: HashMap<String, Source>,
    totp: HashMap<String, TotpFactor>,
    /// Subject -> unused recovery code hashes.
    recovery_codes: HashMap<String, Vec<SecretHash>>,
    /// Credential id -> passkey.
    passkeys: HashMap<String, PasskeyRecord>,
    /// Polled request -> (last poll, interval).
    paces: HashMap<String, (Timestamp, i64)>,
}

struct StoredCode {
    grant: PendingGrant,
    expires_at: Timestamp,
    consumed: bool,
}

struct StoredRefresh {
    record: RefreshRecord,
    used: bool,
}

impl State {
    /// Revokes every grant whose stored refresh tokens or codes `belongs` holds for
    /// (its client id and subject), as `revoke_grant` does.
    fn revoke_grants_of(&mut self, belongs: impl Fn(&str, &str) -> bool) {
        let mut until: HashMap<GrantId, Timestamp> = HashMap::new();
        for token in self.refresh_tokens.values() {
            if belongs(token.record.client_id.as_str(), &token.record.subject) {
                let entry = until.entry(token.record.grant_id.clone()).or_insert(token.record.expires_at);
                *entry = (*entry).max(token.record.expires_at);
            }
        }
        for code in self.codes.values_mut() {
            if belongs(code.grant.client_id.as_str(), &code.grant.subject) {
                code.consumed = true;
                let entry = until.entry(code.grant.grant_id.clone()).or_insert(code.expires_at);
                *entry = (*entry).max(code.expires_at);
            }
        }
        for (grant_id, until) in until {
            let remembered = self.revoked_grants.entry(grant_id).or_insert(until);
            *remembered = (*remembered).max(until);
        }
    }

    /// Whether the token can no longer be used because it or its grant was used up.
    fn refresh_replayed(&self, token: &StoredRefresh) -> bool {
        token.used || self.revoked_grants.contains_key(&token.record.grant_id)
    }
}

/// Removes at most `limit` entries for which `expired` holds; returns how many went.
fn purge_map<K: Clone + Eq + Hash, V>(
    map: &mut HashMap<K, V>,
    limit: usize,
    expired: impl Fn(&V) -> bool,
) -> u64 {
    let keys: Vec<K> = map.iter().filter(|(_, v)| expired(v)).map(|(k, _)| k.clone()).take(limit).collect();
    for key in &keys {
        map.remove(key);
    }
    keys.len() as u64
}

fn duplicate(what: &str) -> StoreError {
    StoreError::new(format!("duplicate {what}"))
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
    async fn put_clients_from(&self, source: Source, clients: &[Client]) -> StoreResult<()> {
        let mut state = self.state();
        for client in clients {
            state.clients.insert(client.client_id.clone(), client.clone());
            state.client_sources.insert(client.client_id.clone(), source);
        }
        Ok(())
    }
    async fn client_sources(&self) -> StoreResult<Vec<(ClientId, Source)>> {
        let state = self.state();
        let mut sources: Vec<(ClientId, Source)> = state
            .clients
            .keys()
            .map(|id| (id.clone(), state.client_sources.get(id).copied().unwrap_or(Source::Config)))
            .collect();
        sources.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        Ok(sources)
    }
    async fn remove_client(&self, client_id: &ClientId, _now: Timestamp) -> StoreResult<bool> {
        let mut state = self.state();
        if state.clients.remove(client_id).is_none() {
            return Ok(false);
        }
        state.client_sources.remove(client_id);
        state.revoke_grants_of(|client, _| client == client_id.as_str());
        state.consents.retain(|(_, client), _| client != client_id.as_str());
        Ok(true)
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
    async fn user_by_subject(&self, subject: &str) -> StoreResult<Option<User>> {
        let state = self.state();
        // Lowest username first, as the SQL backends order it.
        Ok(state
            .users
            .values()
            .filter(|u| u.subject == subject)
            .min_by(|a, b| a.username.cmp(&b.username))
            .cloned())
    }
    async fn users(&self) -> StoreResult<Vec<User>> {
        let mut users: Vec<User> = self.state().users.values().cloned().collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(users)
    }
    async fn put_user_from(&self, user: &User, source: Source) -> StoreResult<()> {
        let mut state = self.state();
        state.users.insert(user.username.clone(), user.clone());
        state.user_sources.insert(user.username.clone(), source);
        Ok(())
    }
    async fn user_sources(&self) -> StoreResult<Vec<(String, Source)>> {
        let state = self.state();
        let mut sources: Vec<(String, Source)> = state
            .users
            .keys()
            .map(|name| (name.clone(), state.user_sources.get(name).copied().unwrap_or(Source::Cli)))
            .collect();
        sources.sort();
        Ok(sources)
    }
    async fn remove_user(&self, username: &str, _now: Timestamp) -> StoreResult<Option<User>> {
        let mut state = self.state();
        let Some(user) = state.users.remove(username) else { return Ok(None) };
        state.user_sources.remove(username);
        let subject = user.subject.clone();
        state.revoke_grants_of(|_, owner| owner == subject);
        state.sessions.retain(|_, session| session.subject != subject);
        state.consents.retain(|(owner, _), _| *owner != subject);
        state.totp.remove(&subject);
        state.recovery_codes.remove(&subject);
        state.passkeys.retain(|_, passkey| passkey.subject != subject);
        Ok(Some(user))
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
        interleave().await;
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
    async fn is_revoked(&self, jti: &str, grant_id: Option<&GrantId>) -> StoreResult<bool> {
        let state = self.state();
        let grant_revoked = grant_id.is_some_and(|grant_id| state.revoked_grants.contains_key(grant_id));
        Ok(grant_revoked || state.revoked_jtis.contains_key(jti))
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
        purged += purge_map(&mut state.codes, limit, |code| code.expires_at <= now);
        purged += purge_map(&mut state.refresh_tokens, limit, |token| token.record.expires_at <= now);
        purged += purge_map(&mut state.revoked_grants, limit, |expires| *expires <= now);
        purged += purge_map(&mut state.sessions, limit, |session| session.expires_at <= now);
        purged += purge_map(&mut state.requests, limit, |(_, expires)| *expires <= now);
        purged += purge_map(&mut state.polled, limit, |(_, _, expires)| *expires <= now);
        purged += purge_map(&mut state.failures, limit, |(_, window_ends)| *window_ends <= now);
        Ok(purged)
    }
    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}

#[async_trait]
impl CodeStore for MemoryStore {
    async fn put_code(
        &self,
        hash: &SecretHash,
        grant: &PendingGrant,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        match self.state().codes.entry(*hash) {
            Entry::Occupied(_) => Err(duplicate("authorization code")),
            Entry::Vacant(slot) => {
                slot.insert(StoredCode { grant: grant.clone(), expires_at, consumed: false });
                Ok(())
            }
        }
    }

    async fn consume_code(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Consumed<PendingGrant>> {
        let mut state = self.state();
        let Some(code) = state.codes.get_mut(hash).filter(|code| code.expires_at > now) else {
            return Ok(Consumed::Missing);
        };
        if code.consumed {
            return Ok(Consumed::Replayed { grant_id: code.grant.grant_id.clone() });
        }
        code.consumed = true;
        Ok(Consumed::Fresh(code.grant.clone()))
    }

    async fn redeem_code(
        &self,
        hash: &SecretHash,
        presented: &super::CodePresentation,
        now: Timestamp,
    ) -> StoreResult<Result<Consumed<PendingGrant>, super::CodeMismatch>> {
        let mut state = self.state();
        let Some(code) = state.codes.get_mut(hash).filter(|code| code.expires_at > now) else {
            return Ok(Ok(Consumed::Missing));
        };
        if code.consumed {
            return Ok(Ok(Consumed::Replayed { grant_id: code.grant.grant_id.clone() }));
        }
        if let Some(mismatch) = code.grant.mismatch(presented) {
            return Ok(Err(mismatch));
        }
        code.consumed = true;
        Ok(Ok(Consumed::Fresh(code.grant.clone())))
    }

    async fn redeemed_code(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<PendingGrant>> {
        let state = self.state();
        Ok(state
            .codes
            .get(hash)
            .filter(|code| code.expires_at > now && code.consumed)
            .map(|code| code.grant.clone()))
    }
}

#[async_trait]
impl RefreshStore for MemoryStore {
    async fn put_refresh_token(&self, hash: &SecretHash, record: &RefreshRecord) -> StoreResult<()> {
        let mut state = self.state();
        let State { refresh_tokens, revoked_grants, .. } = &mut *state;
        match refresh_tokens.entry(*hash) {
            Entry::Occupied(_) => Err(duplicate("refresh token")),
            Entry::Vacant(slot) => {
                slot.insert(StoredRefresh { record: record.clone(), used: false });
                // Of a grant revoked before it was stored: remembered while it lives.
                if let Some(until) = revoked_grants.get_mut(&record.grant_id) {
                    *until = (*until).max(record.expires_at);
                }
                Ok(())
            }
        }
    }

    async fn refresh_token(&self, hash: &SecretHash) -> StoreResult<Consumed<RefreshRecord>> {
        let state = self.state();
        Ok(match state.refresh_tokens.get(hash) {
            None => Consumed::Missing,
            Some(token) if state.refresh_replayed(token) => {
                Consumed::Replayed { grant_id: token.record.grant_id.clone() }
            }
            Some(token) => Consumed::Fresh(token.record.clone()),
        })
    }

    async fn rotate_refresh_token(
        &self,
        old: &SecretHash,
        new: &SecretHash,
        successor: &RefreshRecord,
        now: Timestamp,
    ) -> StoreResult<Consumed<()>> {
        let mut state = self.state();
        let Some(token) = state.refresh_tokens.get(old) else { return Ok(Consumed::Missing) };
        if state.refresh_replayed(token) {
            return Ok(Consumed::Replayed { grant_id: token.record.grant_id.clone() });
        }
        let record = &token.record;
        if record.expires_at <= now || record.idle_expires_at.is_some_and(|idle| idle <= now) {
            return Ok(Consumed::Missing);
        }
        if record.grant_id != successor.grant_id || successor.expires_at > record.expires_at {
            return Err(StoreError::new(SUCCESSOR_OUTSIDE_FAMILY));
        }
        if state.refresh_tokens.contains_key(new) {
            return Err(duplicate("refresh token"));
        }
        if let Some(token) = state.refresh_tokens.get_mut(old) {
            token.used = true;
        }
        state.refresh_tokens.insert(*new, StoredRefresh { record: successor.clone(), used: false });
        Ok(Consumed::Fresh(()))
    }
}

#[async_trait]
impl GrantStore for MemoryStore {
    async fn revoke_grant(
        &self,
        grant_id: &GrantId,
        now: Timestamp,
        remember_until: Timestamp,
    ) -> StoreResult<()> {
        let mut state = self.state();
        let State { codes, refresh_tokens, revoked_grants, .. } = &mut *state;
        let mut until = now.max(remember_until);
        // The grant's entry refuses every refresh token of the family while it lasts.
        for token in refresh_tokens.values().filter(|t| t.record.grant_id == *grant_id) {
            until = until.max(token.record.expires_at);
        }
        for code in codes.values_mut().filter(|code| code.grant.grant_id == *grant_id) {
            code.consumed = true;
            until = until.max(code.expires_at);
        }
        let remembered = revoked_grants.entry(grant_id.clone()).or_insert(until);
        *remembered = (*remembered).max(until);
        Ok(())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn put_session(&self, hash: &SecretHash, session: &Session) -> StoreResult<()> {
        self.state().sessions.insert(*hash, session.clone());
        Ok(())
    }

    async fn session(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<Session>> {
        Ok(self.state().sessions.get(hash).filter(|session| session.expires_at > now).cloned())
    }

    async fn delete_session(&self, hash: &SecretHash) -> StoreResult<()> {
        self.state().sessions.remove(hash);
        Ok(())
    }

    async fn sessions_of(&self, subject: &str, now: Timestamp) -> StoreResult<Vec<Session>> {
        let mut sessions: Vec<Session> = self
            .state()
            .sessions
            .values()
            .filter(|session| session.subject == subject && session.expires_at > now)
            .cloned()
            .collect();
        sessions.sort_by(|a, b| (a.auth_time, &a.sid).cmp(&(b.auth_time, &b.sid)));
        Ok(sessions)
    }

    async fn end_session_of(&self, subject: &str, sid: &str) -> StoreResult<bool> {
        let mut state = self.state();
        let before = state.sessions.len();
        state.sessions.retain(|_, session| !(session.subject == subject && session.sid == sid));
        Ok(state.sessions.len() < before)
    }
}

/// Lets other tasks run before a flow document or single-use mark is touched, as a
/// real store's round trip would: steps that core composes from several calls then
/// interleave in tests as they do on SQLite and PostgreSQL, so a composition that is
/// not atomic fails here too, not only on the SQL backends.
async fn interleave() {
    tokio::task::yield_now().await;
}

#[async_trait]
impl RequestStore for MemoryStore {
    async fn put_request(
        &self,
        key: &str,
        document: &serde_json::Value,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        interleave().await;
        self.state().requests.insert(key.to_owned(), (document.clone(), expires_at));
        Ok(())
    }

    async fn request(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>> {
        interleave().await;
        Ok(self.state().requests.get(key).filter(|(_, expires)| *expires > now).map(|(doc, _)| doc.clone()))
    }

    async fn consume_request(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>> {
        interleave().await;
        let mut state = self.state();
        if state.requests.get(key).is_none_or(|(_, expires)| *expires <= now) {
            return Ok(None);
        }
        Ok(state.requests.remove(key).map(|(document, _)| document))
    }

    async fn requests_with_prefix(
        &self,
        prefix: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<(String, serde_json::Value)>> {
        let mut found: Vec<(String, serde_json::Value)> = self
            .state()
            .requests
            .iter()
            .filter(|(key, (_, expires))| key.starts_with(prefix) && *expires > now)
            .map(|(key, (document, _))| (key.clone(), document.clone()))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }
}

#[async_trait]
impl ConsentStore for MemoryStore {
    async fn consented_scopes(&self, subject: &str, client_id: &str) -> StoreResult<Vec<String>> {
        let key = (subject.to_owned(), client_id.to_owned());
        Ok(self.state().consents.get(&key).cloned().unwrap_or_default())
    }

    async fn put_consent(&self, subject: &str, client_id: &str, scopes: &[String]) -> StoreResult<()> {
        self.state().consents.insert((subject.to_owned(), client_id.to_owned()), scopes.to_vec());
        Ok(())
    }
}

#[async_trait]
impl ThrottleStore for MemoryStore {
    async fn record_failure(&self, key: &str, now: Timestamp, window: i64) -> StoreResult<u32> {
        let mut state = self.state();
        let entry = state.failures.entry(key.to_owned()).or_insert((0, now));
        if entry.1 <= now {
            *entry = (0, now.saturating_add(window));
        }
        entry.0 = entry.0.saturating_add(1);
        Ok(entry.0)
    }

    async fn failures(&self, key: &str, now: Timestamp) -> StoreResult<u32> {
        let state = self.state();
        Ok(state.failures.get(key).filter(|(_, window_ends)| *window_ends > now).map_or(0, |(n, _)| *n))
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        self.state().failures.remove(key);
        Ok(())
    }

    async fn reserve_attempt(&self, key: &str, limit: u32, now: Timestamp, window: i64) -> StoreResult<bool> {
        // One lock for the check and the count.
        let mut state = self.state();
        let entry = state.failures.entry(key.to_owned()).or_insert((0, now));
        if entry.1 <= now {
            *entry = (0, now.saturating_add(window));
        }
        if entry.0 >= limit {
            return Ok(false);
        }
        entry.0 += 1;
        Ok(true)
    }

    async fn refund_attempt(&self, key: &str) -> StoreResult<()> {
        if let Some(entry) = self.state().failures.get_mut(key) {
            entry.0 = entry.0.saturating_sub(1);
        }
        Ok(())
    }
}

#[async_trait]
impl SecretStore for MemoryStore {
    async fn shared_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        Ok(self.state().secrets.entry(name.to_owned()).or_insert_with(|| candidate.to_vec()).clone())
    }
}

#[async_trait]
impl FactorStore for MemoryStore {
    async fn put_totp(&self, subject: &str, factor: &TotpFactor) -> StoreResult<bool> {
        let mut state = self.state();
        if !factor.confirmed && state.totp.get(subject).is_some_and(|existing| existing.confirmed) {
            return Ok(false);
        }
        state.totp.insert(subject.to_owned(), factor.clone());
        Ok(true)
    }

    async fn totp(&self, subject: &str) -> StoreResult<Option<TotpFactor>> {
        Ok(self.state().totp.get(subject).cloned())
    }

    async fn accept_totp_step(&self, subject: &str, step: i64, pending: bool) -> StoreResult<bool> {
        let mut state = self.state();
        let Some(factor) = state.totp.get_mut(subject) else { return Ok(false) };
        if factor.confirmed == pending || factor.last_step >= step {
            return Ok(false);
        }
        factor.last_step = step;
        factor.confirmed = true;
        Ok(true)
    }

    async fn delete_totp(&self, subject: &str) -> StoreResult<bool> {
        Ok(self.state().totp.remove(subject).is_some())
    }

    async fn put_recovery_codes(&self, subject: &str, codes: &[SecretHash]) -> StoreResult<()> {
        self.state().recovery_codes.insert(subject.to_owned(), codes.to_vec());
        Ok(())
    }

    async fn use_recovery_code(&self, subject: &str, code: &SecretHash) -> StoreResult<bool> {
        let mut state = self.state();
        let Some(codes) = state.recovery_codes.get_mut(subject) else { return Ok(false) };
        let before = codes.len();
        codes.retain(|stored| stored != code);
        Ok(codes.len() < before)
    }

    async fn recovery_codes_left(&self, subject: &str) -> StoreResult<u32> {
        let state = self.state();
        Ok(state
            .recovery_codes
            .get(subject)
            .map_or(0, |codes| u32::try_from(codes.len()).unwrap_or(u32::MAX)))
    }

    async fn add_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<bool> {
        let mut state = self.state();
        match state.passkeys.entry(passkey.credential_id.clone()) {
            Entry::Occupied(_) => Ok(false),
            Entry::Vacant(slot) => {
                slot.insert(passkey.clone());
                Ok(true)
            }
        }
    }

    async fn touch_passkey(
        &self,
        subject: &str,
        credential_id: &str,
        credential: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut state = self.state();
        let Some(passkey) = state.passkeys.get_mut(credential_id).filter(|p| p.subject == subject) else {
            return Ok(false);
        };
        credential.clone_into(&mut passkey.credential);
        passkey.last_used_at = Some(now);
        Ok(true)
    }

    async fn passkeys(&self, subject: &str) -> StoreResult<Vec<PasskeyRecord>> {
        let mut passkeys: Vec<PasskeyRecord> =
            self.state().passkeys.values().filter(|p| p.subject == subject).cloned().collect();
        passkeys.sort_by(|a, b| (a.created_at, &a.credential_id).cmp(&(b.created_at, &b.credential_id)));
        Ok(passkeys)
    }

    async fn passkey(&self, credential_id: &str) -> StoreResult<Option<PasskeyRecord>> {
        Ok(self.state().passkeys.get(credential_id).cloned())
    }

    async fn delete_passkey(&self, subject: &str, credential_id: &str) -> StoreResult<bool> {
        let mut state = self.state();
        if state.passkeys.get(credential_id).is_some_and(|p| p.subject == subject) {
            state.passkeys.remove(credential_id);
            return Ok(true);
        }
        Ok(false)
    }

    async fn delete_factors(&self, subject: &str) -> StoreResult<bool> {
        let mut state = self.state();
        let totp = state.totp.remove(subject).is_some();
        let codes = state.recovery_codes.remove(subject).is_some_and(|codes| !codes.is_empty());
        let before = state.passkeys.len();
        state.passkeys.retain(|_, passkey| passkey.subject != subject);
        Ok(totp || codes || state.passkeys.len() < before)
    }
}

#[async_trait]
impl PollStore for MemoryStore {
    async fn put_polled(
        &self,
        key: &str,
        state: &str,
        document: &serde_json::Value,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        interleave().await;
        self.state().polled.insert(key.to_owned(), (state.to_owned(), document.clone(), expires_at));
        Ok(())
    }

    async fn polled(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>> {
        interleave().await;
        Ok(self
            .state()
            .polled
            .get(key)
            .filter(|(_, _, expires)| *expires > now)
            .map(|(_, doc, _)| doc.clone()))
    }

    async fn decide_polled(
        &self,
        key: &str,
        state: &str,
        document: &serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<bool> {
        interleave().await;
        let mut stored = self.state();
        match stored.polled.get_mut(key) {
            Some((current, stored_document, expires)) if *expires > now && current == PENDING => {
                state.clone_into(current);
                *stored_document = document.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn poll(&self, key: &str, now: Timestamp, rules: &PollRules) -> StoreResult<Polled> {
        // One lock for the whole poll.
        let mut state = self.state();
        let Some((request_state, document, row_expires_at)) =
            state.polled.get(key).filter(|(_, _, expires)| *expires > now)
        else {
            return Ok(Polled::Missing);
        };
        if let Some(answer) = unpaced_answer(document, *row_expires_at, now, rules) {
            return Ok(answer);
        }
        let decided = is_decided(request_state, rules);
        let document = document.clone();
        if let Some(interval) = too_soon(&mut state.paces, key, now, rules) {
            return Ok(Polled::TooSoon { interval });
        }
        if !decided {
            return Ok(Polled::Waiting(document));
        }
        state.polled.remove(key);
        Ok(Polled::Taken(document))
    }
}

/// Paces one poll of `key` (see [`PollStore::poll`]): the grown interval when it came
/// too soon, `None` when it is in time.
fn too_soon(
    paces: &mut HashMap<String, (Timestamp, i64)>,
    key: &str,
    now: Timestamp,
    rules: &PollRules,
) -> Option<i64> {
    let Some((last_poll, current)) = paces.get_mut(key) else {
        paces.insert(key.to_owned(), (now, rules.interval));
        return None;
    };
    let early = now - *last_poll < *current;
    if early {
        *current += rules.step;
    }
    *last_poll = now;
    early.then_some(*current)
}
