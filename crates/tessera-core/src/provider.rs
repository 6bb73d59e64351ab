//! The provider: everything an endpoint needs, assembled once at start.

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::client_auth::jwks::{JwksCache, JwksSource};
use crate::client_auth::registry::ClientRegistry;
use crate::clock::Clock;
use crate::grants::registry::GrantRegistry;
use crate::notify::Notifier;
use crate::random::Rng;
use crate::settings::Settings;
use crate::store::Store;
use crate::tokens::{KeyRing, KeyRingError};

/// How long a DPoP nonce is issued for; it stays valid one window more.
const DPOP_NONCE_WINDOW: i64 = 300;

/// The OAuth provider: settings, catalog, store, clock, keys and caches.
pub struct Provider {
    pub settings: Settings,
    pub catalog: Catalog,
    pub store: Arc<dyn Store>,
    /// The same store as the slices grants may touch, made once (not per request).
    pub grant_store: Arc<dyn crate::store::GrantStores>,
    pub clock: Arc<dyn Clock>,
    pub rng: Rng,
    pub keys: KeyRing,
    pub clients: ClientRegistry,
    pub jwks: JwksCache,
    pub grants: GrantRegistry,
    /// Sends CIBA pings and webhook announcements.
    pub notifier: Arc<dyn Notifier>,
    /// Makes DPoP nonces; shared through the store, so any instance accepts them.
    dpop_nonce_key: aws_lc_rs::hmac::Key,
    /// DPoP proof headers already checked, with their keys (not their `jti`s).
    pub dpop_keys: crate::sender::dpop::ProofKeys,
    /// When registered clients were last seen in use (their removal when unused).
    pub client_use: crate::registration::client_use::ClientUse,
    /// Bounds concurrent password checks (argon2id memory).
    pub password_checks: crate::password::PasswordChecks,
    /// Remembers secrets that passed an argon2id check, so the next request is one SHA-256.
    pub secret_checks: crate::secret_checks::SecretChecks,
    /// Derives CIBA ping-mode `auth_req_id`s from their stored seeds.
    ping_id_key: aws_lc_rs::hmac::Key,
    /// The WebAuthn relying party; `None` when passkeys are off (an IP-literal issuer).
    pub passkeys: Option<crate::passkeys::Passkeys>,
}

impl Provider {
    /// Assembles a provider, loading (or creating) the signing keys.
    ///
    /// # Errors
    /// When the keys cannot be loaded or created.
    pub async fn new(
        settings: Settings,
        catalog: Catalog,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        jwks_source: Arc<dyn JwksSource>,
        notifier: Arc<dyn Notifier>,
        document_source: Arc<dyn crate::metadata_documents::DocumentSource>,
    ) -> Result<Self, KeyRingError> {
        let rng = Rng::default();
        let settings_passkeys = (settings.passkey_rp_id.clone(), settings.issuer.clone());
        let keys = KeyRing::load(store.clone(), settings.signing.clone(), rng.clone(), clock.now()).await?;
        let clients = ClientRegistry::new(store.clone(), settings.client_cache_ttl).with_documents(
            crate::metadata_documents::MetadataDocuments::new(
                document_source,
                settings.metadata_documents.clone(),
            ),
        );
        let nonce_secret = store.shared_secret("dpop-nonce", &rng.bytes::<32>()).await?;
        let dpop_nonce_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &nonce_secret);
        // Shared through the store, so every instance derives the same successors.
        let successor_secret = store.shared_secret("refresh-successor", &rng.bytes::<32>()).await?;
        let ping_id_key = ping_id_key(
            &store.shared_secret("ciba-ping-id", &rng.bytes::<32>()).await?,
            settings.signing.encryption_key.as_ref(),
        );
        Ok(Self {
            settings,
            catalog,
            grant_store: store.clone(),
            store,
            clock,
            rng,
            keys,
            clients,
            jwks: JwksCache::new(jwks_source),
            grants: GrantRegistry::standard(&successor_secret),
            notifier,
            dpop_nonce_key,
            dpop_keys: crate::sender::dpop::ProofKeys::default(),
            client_use: crate::registration::client_use::ClientUse::default(),
            password_checks: crate::password::PasswordChecks::default(),
            secret_checks: crate::secret_checks::SecretChecks::default(),
            ping_id_key,
            passkeys: relying_party(&settings_passkeys),
        })
    }

    /// The `auth_req_id` of a CIBA ping-mode request with this `seed`: its HMAC, so
    /// the ping can name the request while the store keeps only the id's hash.
    #[must_use]
    pub fn ping_auth_req_id(&self, seed: &str) -> String {
        crate::secret::b64url(aws_lc_rs::hmac::sign(&self.ping_id_key, seed.as_bytes()))
    }

    /// What mints and reads this server's tokens.
    #[must_use]
    pub fn token_issuer(&self) -> crate::tokens::TokenIssuer<'_> {
        crate::tokens::TokenIssuer {
            settings: &self.settings,
            keys: &self.keys,
            rng: &self.rng,
            store: self.store.as_ref(),
            clock: self.clock.as_ref(),
        }
    }

    /// The documents of multi-step flow `F`.
    #[must_use]
    pub fn flows<F: crate::store::Flow>(&self) -> crate::store::FlowStore<'_, F> {
        crate::store::FlowStore::new(self.store.as_ref())
    }

    /// Verifies a proof (RFC 9449 §4.3) and returns the key's thumbprint. With an
    /// access token, the proof must also carry its hash (`ath`, §4.2). Each proof is
    /// accepted once: its `jti` goes through the replay cache.
    ///
    /// # Errors
    /// `invalid_dpop_proof` for any failed check; `use_dpop_nonce` without a fresh nonce.
    pub async fn verify_dpop(
        &self,
        proof: &crate::sender::dpop::DpopProof,
        access_token: Option<&str>,
        now: crate::Timestamp,
    ) -> Result<String, crate::OAuthError> {
        let checked = self.dpop_keys.check(proof, access_token, now)?;
        // RFC 9449 §8: when nonces are on, a proof without a fresh one is answered with one.
        if self.settings.dpop_require_nonce
            && !checked.nonce.as_deref().is_some_and(|nonce| self.dpop_nonce_is_fresh(nonce, now))
        {
            return Err(crate::OAuthError::new(
                crate::ErrorCode::UseDpopNonce,
                "send the proof again with the DPoP-Nonce",
            ));
        }
        // RFC 9449 §11.1: a proof is used once.
        let replay_key = format!("dpop:{}:{}", checked.jkt, checked.jti);
        if !self.store.remember_once(&replay_key, checked.replay_until(), now).await? {
            return Err(crate::sender::dpop::invalid("the DPoP proof was already used"));
        }
        Ok(checked.jkt)
    }

    /// The DPoP nonce for the time window holding `now` (RFC 9449 §8): stateless, the
    /// HMAC of the window number, so every instance makes and accepts the same ones.
    #[must_use]
    pub fn dpop_nonce(&self, now: crate::Timestamp) -> String {
        self.dpop_nonce_for_window(now.div_euclid(DPOP_NONCE_WINDOW))
    }

    /// Whether `nonce` is the current or the previous window's nonce.
    #[must_use]
    pub fn dpop_nonce_is_fresh(&self, nonce: &str, now: crate::Timestamp) -> bool {
        let window = now.div_euclid(DPOP_NONCE_WINDOW);
        [window, window - 1].into_iter().any(|w| {
            let expected = self.dpop_nonce_for_window(w);
            crate::secret::constant_time_eq(&expected, nonce)
        })
    }

    fn dpop_nonce_for_window(&self, window: i64) -> String {
        crate::secret::b64url(aws_lc_rs::hmac::sign(&self.dpop_nonce_key, &window.to_be_bytes()))
    }
}

/// The provider reads the subject and actor tokens of token exchange.
#[async_trait::async_trait]
impl crate::grants::IssuedTokens for Provider {
    async fn access_token(
        &self,
        token: &str,
        now: crate::Timestamp,
    ) -> Result<Option<crate::tokens::ResolvedToken>, crate::OAuthError> {
        crate::tokens::access_token::resolve(&self.token_issuer(), token, now).await
    }

    async fn id_token(
        &self,
        token: &str,
    ) -> Result<crate::tokens::id_token::IdTokenClaims, crate::OAuthError> {
        crate::tokens::id_token::read_hint(&self.token_issuer(), token).await
    }
}

/// The key of [`Provider::ping_auth_req_id`]: the instances' shared secret, and, when
/// set, the operator's `signing.encryption_key`, which is never in the database; a
/// copy of the database alone then cannot recompute a pending request's id.
fn ping_id_key(shared: &[u8], encryption_key: Option<&crate::secret::Secret>) -> aws_lc_rs::hmac::Key {
    let outer = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, shared);
    let operator = encryption_key.map(crate::secret::Secret::expose).unwrap_or_default();
    let derived = aws_lc_rs::hmac::sign(&outer, format!("tessera ciba ping id\0{operator}").as_bytes());
    aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, derived.as_ref())
}

/// The WebAuthn relying party for `(rp_id, issuer)`: pages are served at the issuer's
/// origin. `None` without an `rp_id` (passkeys off), or when webauthn-rs refuses it.
fn relying_party((rp_id, issuer): &(Option<String>, String)) -> Option<crate::passkeys::Passkeys> {
    let rp_id = rp_id.as_deref()?;
    let origin = url::Url::parse(issuer).ok()?;
    match crate::passkeys::Passkeys::new(rp_id, &origin, "Tessera") {
        Ok(passkeys) => Some(passkeys),
        Err(error) => {
            tracing::warn!(%error, "passkeys are off");
            None
        }
    }
}
