//! The signing key ring: keys created ahead of use and published before they sign
//! (announce), rotated on schedule, and kept published after they stop (retain).
//! Several instances may share one store: the key generation is unique, so exactly
//! one instance's insert of "the next key" wins and the others load it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use jsonwebtoken::DecodingKey;
use serde_json::json;
use tracing::{info, warn};

use super::keys::{KeyError, SigningAlgorithm, SigningKey, generate_pkcs8};
use super::sealing::KeySealer;
use crate::Timestamp;
use crate::random::Rng;
use crate::settings::SigningSettings;
use crate::store::{KeyStore, StoreError, StoredKey};

/// When and as which generation the next key should exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPlan {
    pub generation: i64,
    pub activates_at: Timestamp,
    pub retires_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Seconds by which a key may sign before its `activates_at`. Instances' clocks differ
/// by a little: without it, an instance a second behind the one that created the first
/// key would find no key signing yet and create another. A key is in the JWKS from the
/// moment it is stored, so signing a few seconds early never precedes its publication.
pub const ACTIVATION_TOLERANCE: Timestamp = 5;

/// Decides whether a key must be created now, from the stored keys and the schedule.
///
/// No key signing now: one that signs at once (first start, or an algorithm change).
/// The newest key retiring within `announce`: its successor, signing when it retires.
#[must_use]
pub fn plan_next_key(
    keys: &[StoredKey],
    algorithm: SigningAlgorithm,
    now: Timestamp,
    schedule: &SigningSettings,
) -> Option<KeyPlan> {
    let next_generation = keys.iter().map(|key| key.generation).max().unwrap_or(0) + 1;
    let of_algorithm = || keys.iter().filter(|key| key.algorithm == algorithm.as_str());
    let plan = |activates_at: Timestamp| {
        let retires_at = activates_at + schedule.rotation;
        KeyPlan {
            generation: next_generation,
            activates_at,
            retires_at,
            expires_at: retires_at + schedule.retain,
        }
    };
    let signing_now =
        of_algorithm().any(|key| key.activates_at <= now + ACTIVATION_TOLERANCE && now < key.retires_at);
    if !signing_now {
        return Some(plan(now));
    }
    let newest = of_algorithm().max_by_key(|key| key.generation)?;
    (newest.retires_at - schedule.announce <= now).then(|| plan(newest.retires_at))
}

/// A published key: what verifies tokens signed with it.
pub struct PublishedKey {
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    pub decoding: DecodingKey,
}

/// One consistent view of the keys: the signer, the published keys and the JWKS.
pub struct KeySet {
    /// The active key of the default algorithm (the first of `[signing] algorithms`).
    signer: Option<Arc<SigningKey>>,
    /// When the first of the signers retires: until then this set may keep serving
    /// after a failed refresh.
    signs_until: Timestamp,
    /// The active keys of the other listed algorithms, for clients that ask for them.
    others: Vec<Arc<SigningKey>>,
    published: Vec<PublishedKey>,
    jwks: String,
    fresh_until: Timestamp,
}

impl KeySet {
    /// The key that signs now.
    ///
    /// # Errors
    /// `NoActiveKey` when the store holds no key active now.
    pub fn signer(&self) -> Result<&SigningKey, KeyError> {
        self.signer.as_deref().ok_or(KeyError::NoActiveKey)
    }

    /// The key that signs now with `algorithm` (`None`: the default, as [`Self::signer`]).
    ///
    /// # Errors
    /// `NoActiveKey` when no key of that algorithm is active now.
    pub fn signer_for(&self, algorithm: Option<SigningAlgorithm>) -> Result<&SigningKey, KeyError> {
        let default = self.signer()?;
        match algorithm {
            None => Ok(default),
            Some(algorithm) if algorithm == default.algorithm() => Ok(default),
            Some(algorithm) => self
                .others
                .iter()
                .find(|key| key.algorithm() == algorithm)
                .map(AsRef::as_ref)
                .ok_or(KeyError::NoActiveKey),
        }
    }

    /// The published key with this `kid`.
    #[must_use]
    pub fn published(&self, kid: &str) -> Option<&PublishedKey> {
        self.published.iter().find(|key| key.kid == kid)
    }

    /// The JWK Set document (RFC 7517 §5).
    #[must_use]
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    /// Whether this set's signer may still sign at `now`.
    fn signs_at(&self, now: Timestamp) -> bool {
        self.signer.is_some() && now < self.signs_until
    }
}

/// Clears the single-flight flag when the refresh ends, however it ends.
struct Flight<'a>(&'a AtomicBool);

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// After a failed refresh, how long the cached set serves before the next attempt.
const REFRESH_BACKOFF: Timestamp = 5;

/// The instance's cached key set, refreshed from the store when stale.
pub struct KeyRing {
    store: Arc<dyn KeyStore>,
    settings: SigningSettings,
    sealer: KeySealer,
    rng: Rng,
    current: RwLock<Arc<KeySet>>,
    parsed: Mutex<HashMap<String, Arc<SigningKey>>>,
    /// Set while one caller refreshes (single flight); nobody waits on it.
    refreshing: AtomicBool,
    /// After a failed refresh: no new attempt before this time.
    retry_at: AtomicI64,
}

/// A failure to maintain or load keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl From<KeyRingError> for crate::OAuthError {
    fn from(error: KeyRingError) -> Self {
        match error {
            KeyRingError::Store(error) => error.into(),
            KeyRingError::Key(error) => Self::server_error(error),
        }
    }
}

impl KeyRing {
    /// Loads the keys, creating the first or next one when the schedule says so.
    ///
    /// # Errors
    /// When the store fails or a stored key cannot be decrypted or parsed.
    pub async fn load(
        store: Arc<dyn KeyStore>,
        settings: SigningSettings,
        rng: Rng,
        now: Timestamp,
    ) -> Result<Self, KeyRingError> {
        let sealer = KeySealer::new(settings.encryption_key.as_ref());
        if !sealer.encrypts() {
            warn!("signing keys are stored unencrypted: set signing.encryption_key");
        }
        let empty = KeySet {
            signer: None,
            signs_until: now,
            others: Vec::new(),
            published: Vec::new(),
            jwks: String::new(),
            fresh_until: now,
        };
        let ring = Self {
            store,
            settings,
            sealer,
            rng,
            current: RwLock::new(Arc::new(empty)),
            parsed: Mutex::new(HashMap::new()),
            refreshing: AtomicBool::new(false),
            retry_at: AtomicI64::new(Timestamp::MIN),
        };
        ring.refresh(now).await?;
        Ok(ring)
    }

    /// The current key set, refreshed first when stale (cache TTL passed, or a key's
    /// activation or retirement is due).
    ///
    /// One caller at a time refreshes (single flight, no lock held across the store
    /// call); while it does, and after a refresh fails, the cached set keeps serving
    /// as long as its signer may still sign, so a store outage does not stop token
    /// issuance before the cache could have been trusted anyway. A failed refresh is
    /// retried after [`REFRESH_BACKOFF`] seconds, not by every request.
    ///
    /// # Errors
    /// When a due refresh fails and the cached set has no valid signer left.
    pub async fn key_set(&self, now: Timestamp) -> Result<Arc<KeySet>, KeyRingError> {
        let cached = self.cached();
        if now < cached.fresh_until {
            return Ok(cached);
        }
        let usable = cached.signs_at(now);
        if usable && now < self.retry_at.load(Ordering::Acquire) {
            return Ok(cached);
        }
        if self.refreshing.swap(true, Ordering::AcqRel) {
            if usable {
                return Ok(cached);
            }
            // Nothing to serve meanwhile: refresh too (key creation is idempotent by
            // generation, so a second refresh is harmless).
            return self.refresh(now).await.map(|()| self.cached());
        }
        let _flight = Flight(&self.refreshing);
        match self.refresh(now).await {
            Ok(()) => Ok(self.cached()),
            Err(error) if usable => {
                warn!(%error, "key refresh failed; serving the cached key set, whose signer is still valid");
                self.retry_at.store(now + REFRESH_BACKOFF, Ordering::Release);
                Ok(cached)
            }
            Err(error) => {
                warn!(%error, "key refresh failed and no cached key may sign");
                Err(error)
            }
        }
    }

    fn cached(&self) -> Arc<KeySet> {
        self.current.read().map_or_else(|poisoned| poisoned.into_inner().clone(), |set| set.clone())
    }

    /// Announces a new key of each listed algorithm now: published at once, signing
    /// after `announce`. The operator's manual rotation; the schedule then continues
    /// from it. Returns the new kids, comma-separated.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn rotate(&self, now: Timestamp) -> Result<String, KeyRingError> {
        let mut kids = Vec::new();
        for &algorithm in &self.settings.algorithms {
            let keys = self.store.signing_keys().await?;
            let generation = keys.iter().map(|key| key.generation).max().unwrap_or(0) + 1;
            let activates_at = now + self.settings.announce;
            let retires_at = activates_at + self.settings.rotation;
            let plan = KeyPlan {
                generation,
                activates_at,
                retires_at,
                expires_at: retires_at + self.settings.retain,
            };
            kids.push(self.create(algorithm, &plan, now).await?);
        }
        self.refresh(now).await?;
        Ok(kids.join(", "))
    }

    /// Reads the store, creates a key when due, and swaps in the new key set.
    async fn refresh(&self, now: Timestamp) -> Result<(), KeyRingError> {
        let mut keys = self.store.signing_keys().await?;
        // One key schedule per listed algorithm, all sharing the generation sequence.
        for &algorithm in &self.settings.algorithms {
            // An insert lost to another instance's key of another algorithm (same
            // generation) plans again; one lost to the same algorithm's key is done.
            for _ in 0..3 {
                let Some(plan) = plan_next_key(&keys, algorithm, now, &self.settings) else { break };
                self.create(algorithm, &plan, now).await?;
                keys = self.store.signing_keys().await?;
            }
        }
        let set = self.build(&keys, now)?;
        match self.current.write() {
            Ok(mut current) => *current = Arc::new(set),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(set),
        }
        Ok(())
    }

    async fn create(
        &self,
        algorithm: SigningAlgorithm,
        plan: &KeyPlan,
        now: Timestamp,
    ) -> Result<String, KeyRingError> {
        let kid = self.rng.identifier();
        let pkcs8 = generate_pkcs8(algorithm, &self.rng)?;
        let private_key = self
            .sealer
            .seal(&kid, &pkcs8, &self.rng)
            .map_err(|reason| KeyError::Load { kid: kid.clone(), reason })?;
        let stored = StoredKey {
            generation: plan.generation,
            kid: kid.clone(),
            algorithm: algorithm.as_str().to_owned(),
            private_key,
            sealed: self.sealer.encrypts(),
            created_at: now,
            activates_at: plan.activates_at,
            retires_at: plan.retires_at,
            expires_at: plan.expires_at,
        };
        if self.store.insert_signing_key(&stored).await? {
            info!(
                kid,
                algorithm = algorithm.as_str(),
                generation = plan.generation,
                activates_at = plan.activates_at,
                "created signing key"
            );
        }
        Ok(kid)
    }

    fn build(&self, keys: &[StoredKey], now: Timestamp) -> Result<KeySet, KeyRingError> {
        let mut parsed = self.parsed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut published = Vec::new();
        let mut jwks = Vec::new();
        // The newest active key of each listed algorithm, by generation, and when it retires.
        let mut signers: Vec<(i64, Arc<SigningKey>, Timestamp)> = Vec::new();
        let mut fresh_until = now + self.settings.cache_ttl;
        for stored in keys.iter().filter(|key| key.expires_at > now) {
            let key = match parsed.get(&stored.kid) {
                Some(key) => key.clone(),
                None => {
                    let key = Arc::new(self.open(stored)?);
                    parsed.insert(stored.kid.clone(), key.clone());
                    key
                }
            };
            let jwk = key.public_jwk();
            let decoding = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(jwk.clone())
                .ok()
                .and_then(|jwk| DecodingKey::from_jwk(&jwk).ok())
                .ok_or_else(|| KeyError::Load { kid: stored.kid.clone(), reason: "bad public key".into() })?;
            published.push(PublishedKey { kid: stored.kid.clone(), algorithm: key.algorithm(), decoding });
            jwks.push(jwk);
            let active = stored.activates_at <= now + ACTIVATION_TOLERANCE && now < stored.retires_at;
            if active && self.settings.algorithms.contains(&key.algorithm()) {
                match signers.iter_mut().find(|(_, signer, _)| signer.algorithm() == key.algorithm()) {
                    Some(newest) if stored.generation > newest.0 => {
                        *newest = (stored.generation, key.clone(), stored.retires_at);
                    }
                    Some(_) => {}
                    None => signers.push((stored.generation, key.clone(), stored.retires_at)),
                }
                fresh_until = fresh_until.min(stored.retires_at);
            }
            if stored.activates_at > now + ACTIVATION_TOLERANCE {
                fresh_until = fresh_until.min(stored.activates_at);
            }
        }
        parsed.retain(|kid, _| keys.iter().any(|key| &key.kid == kid && key.expires_at > now));
        let default = self.settings.algorithm;
        let signer =
            signers.iter().find(|(_, key, _)| key.algorithm() == default).map(|(_, key, _)| key.clone());
        let signs_until = if signer.is_some() {
            signers.iter().map(|(_, _, retires_at)| *retires_at).min().unwrap_or(now)
        } else {
            now
        };
        let others =
            signers.into_iter().map(|(_, key, _)| key).filter(|key| key.algorithm() != default).collect();
        Ok(KeySet {
            signer,
            signs_until,
            others,
            published,
            jwks: json!({ "keys": jwks }).to_string(),
            fresh_until,
        })
    }

    fn open(&self, stored: &StoredKey) -> Result<SigningKey, KeyError> {
        let algorithm: SigningAlgorithm =
            stored.algorithm.parse().map_err(|reason| KeyError::Load { kid: stored.kid.clone(), reason })?;
        let pkcs8 = self
            .sealer
            .open(&stored.kid, &stored.private_key, stored.sealed)
            .map_err(|reason| KeyError::Load { kid: stored.kid.clone(), reason })?;
        SigningKey::from_pkcs8(&stored.kid, algorithm, &pkcs8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
    use crate::store::memory::MemoryStore;

    const DAY: i64 = 86_400;

    /// The default schedule with ES256 alone, so that one key is the whole ring.
    fn schedule() -> SigningSettings {
        SigningSettings {
            algorithms: vec![SigningAlgorithm::Es256],
            ..Settings::with_issuer("http://issuer").signing
        }
    }

    fn stored(generation: i64, activates_at: Timestamp, retires_at: Timestamp) -> StoredKey {
        StoredKey {
            generation,
            kid: format!("k{generation}"),
            algorithm: "ES256".into(),
            private_key: Vec::new(),
            sealed: false,
            created_at: activates_at,
            activates_at,
            retires_at,
            expires_at: retires_at + 14 * DAY,
        }
    }

    #[test]
    fn first_key_signs_at_once() {
        let plan = plan_next_key(&[], SigningAlgorithm::Es256, 1000, &schedule()).unwrap();
        assert_eq!((plan.generation, plan.activates_at, plan.retires_at), (1, 1000, 1000 + 90 * DAY));
    }

    #[test]
    fn successor_is_announced_before_the_current_key_retires() {
        let keys = [stored(1, 0, 90 * DAY)];
        assert_eq!(plan_next_key(&keys, SigningAlgorithm::Es256, 76 * DAY - 1, &schedule()), None);
        let plan = plan_next_key(&keys, SigningAlgorithm::Es256, 76 * DAY, &schedule()).unwrap();
        assert_eq!((plan.generation, plan.activates_at), (2, 90 * DAY));
    }

    #[test]
    fn nothing_is_created_while_a_successor_is_announced() {
        let keys = [stored(1, 0, 90 * DAY), stored(2, 90 * DAY, 180 * DAY)];
        assert_eq!(plan_next_key(&keys, SigningAlgorithm::Es256, 80 * DAY, &schedule()), None);
    }

    #[test]
    fn an_algorithm_change_makes_a_key_of_the_new_algorithm() {
        let keys = [stored(1, 0, 90 * DAY)];
        let plan = plan_next_key(&keys, SigningAlgorithm::EdDsa, DAY, &schedule()).unwrap();
        assert_eq!((plan.generation, plan.activates_at), (2, DAY));
    }

    #[tokio::test]
    async fn rotation_publishes_the_next_key_before_it_signs() {
        let store = Arc::new(MemoryStore::default());
        let ring = KeyRing::load(store.clone(), schedule(), Rng::default(), 0).await.unwrap();
        let first = ring.key_set(0).await.unwrap().signer().unwrap().kid().to_owned();

        let at_announce = 76 * DAY;
        let set = ring.key_set(at_announce).await.unwrap();
        assert_eq!(set.signer().unwrap().kid(), first);
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys.len(), 2);
        let next = &keys[1].kid;
        assert!(set.published(next).is_some(), "announced key is in the JWKS");
        assert!(set.jwks().contains(next.as_str()));

        let set = ring.key_set(90 * DAY).await.unwrap();
        assert_eq!(set.signer().unwrap().kid(), next);
        assert!(set.published(&first).is_some(), "retired key stays published");

        let set = ring.key_set(104 * DAY).await.unwrap();
        assert!(set.published(&first).is_none(), "dropped after retain");
    }

    /// A key store that fails (as an unreachable database does) while `down` is set.
    struct Flaky {
        inner: MemoryStore,
        down: AtomicBool,
        calls: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl KeyStore for Flaky {
        async fn signing_keys(&self) -> crate::store::StoreResult<Vec<StoredKey>> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            if self.down.load(Ordering::Relaxed) {
                return Err(StoreError::unavailable("connection refused"));
            }
            self.inner.signing_keys().await
        }
        async fn insert_signing_key(&self, key: &StoredKey) -> crate::store::StoreResult<bool> {
            if self.down.load(Ordering::Relaxed) {
                return Err(StoreError::unavailable("connection refused"));
            }
            self.inner.insert_signing_key(key).await
        }
    }

    fn flaky() -> Arc<Flaky> {
        Arc::new(Flaky {
            inner: MemoryStore::default(),
            down: AtomicBool::new(false),
            calls: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_serving_the_cached_set_while_its_signer_is_valid() {
        let store = flaky();
        let ring = KeyRing::load(store.clone(), schedule(), Rng::default(), 0).await.unwrap();
        let kid = ring.key_set(0).await.unwrap().signer().unwrap().kid().to_owned();
        store.down.store(true, Ordering::Relaxed);
        let later = schedule().cache_ttl * 3;
        let set = ring.key_set(later).await.expect("cached set despite the outage");
        assert_eq!(set.signer().unwrap().kid(), kid);
        // Backed off: the next requests do not knock on the store again at once.
        let calls = store.calls.load(Ordering::Relaxed);
        for _ in 0..50 {
            ring.key_set(later + 1).await.unwrap();
        }
        assert_eq!(store.calls.load(Ordering::Relaxed), calls, "one attempt per backoff period");
        // Back up: the next refresh after the backoff succeeds.
        store.down.store(false, Ordering::Relaxed);
        let set = ring.key_set(later + REFRESH_BACKOFF).await.unwrap();
        assert_eq!(set.signer().unwrap().kid(), kid);
        assert!(store.calls.load(Ordering::Relaxed) > calls);
    }

    #[tokio::test]
    async fn a_failed_refresh_is_an_error_once_the_cached_signer_has_retired() {
        let store = flaky();
        let ring = KeyRing::load(store.clone(), schedule(), Rng::default(), 0).await.unwrap();
        store.down.store(true, Ordering::Relaxed);
        let error = ring.key_set(91 * DAY).await.err().expect("no key may sign");
        assert_eq!(crate::OAuthError::from(error).code, crate::ErrorCode::TemporarilyUnavailable);
    }

    #[tokio::test]
    async fn two_instances_agree_on_one_next_key() {
        let store = Arc::new(MemoryStore::default());
        let a = KeyRing::load(store.clone(), schedule(), Rng::default(), 0).await.unwrap();
        let b = KeyRing::load(store.clone(), schedule(), Rng::default(), 0).await.unwrap();
        let (sa, sb) = (a.key_set(0).await.unwrap(), b.key_set(0).await.unwrap());
        assert_eq!(sa.signer().unwrap().kid(), sb.signer().unwrap().kid());
        let (x, y) = tokio::join!(a.key_set(80 * DAY), b.key_set(80 * DAY));
        x.unwrap();
        y.unwrap();
        assert_eq!(store.signing_keys().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn each_listed_algorithm_gets_a_key_and_its_own_rotation() {
        let store = Arc::new(MemoryStore::default());
        let settings = Settings::with_issuer("http://issuer").signing;
        assert_eq!(settings.algorithms, [SigningAlgorithm::Es256, SigningAlgorithm::Rs256]);
        let ring = KeyRing::load(store.clone(), settings, Rng::default(), 0).await.unwrap();
        let set = ring.key_set(0).await.unwrap();
        assert_eq!(set.signer().unwrap().algorithm(), SigningAlgorithm::Es256, "the first is the default");
        assert_eq!(set.signer_for(None).unwrap().kid(), set.signer().unwrap().kid());
        let rsa = set.signer_for(Some(SigningAlgorithm::Rs256)).unwrap().kid().to_owned();
        assert!(set.published(&rsa).is_some() && set.jwks().contains(rsa.as_str()));
        assert!(matches!(set.signer_for(Some(SigningAlgorithm::EdDsa)), Err(KeyError::NoActiveKey)));

        // Both successors are announced together, and take over together.
        ring.key_set(76 * DAY).await.unwrap();
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys.len(), 4);
        let generations: std::collections::BTreeSet<i64> = keys.iter().map(|key| key.generation).collect();
        assert_eq!(generations.len(), 4, "one generation sequence for every algorithm");
        let set = ring.key_set(90 * DAY).await.unwrap();
        let next_rsa = set.signer_for(Some(SigningAlgorithm::Rs256)).unwrap().kid().to_owned();
        assert_ne!(next_rsa, rsa);
        assert!(set.published(&rsa).is_some(), "retired RS256 key stays published");
        assert_eq!(store.signing_keys().await.unwrap().len(), 4);
    }
}
