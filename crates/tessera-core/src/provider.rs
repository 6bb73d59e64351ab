//! The provider: everything an endpoint needs, assembled once at start.

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::client_auth::{ClientRegistry, JwksCache, JwksSource};
use crate::clock::Clock;
use crate::grants::GrantRegistry;
use crate::notify::Notifier;
use crate::random::Rng;
use crate::settings::Settings;
use crate::store::Store;
use crate::tokens::{KeyRing, KeyRingError};

/// The OAuth provider: settings, catalog, store, clock, keys and caches.
pub struct Provider {
    pub settings: Settings,
    pub catalog: Catalog,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub rng: Rng,
    pub keys: KeyRing,
    pub clients: ClientRegistry,
    pub jwks: JwksCache,
    pub grants: GrantRegistry,
    /// Sends CIBA pings and webhook announcements.
    pub notifier: Arc<dyn Notifier>,
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
    ) -> Result<Self, KeyRingError> {
        let rng = Rng::default();
        let keys = KeyRing::load(store.clone(), settings.signing.clone(), rng.clone(), clock.now()).await?;
        let clients = ClientRegistry::new(store.clone(), settings.client_cache_ttl);
        Ok(Self {
            settings,
            catalog,
            store,
            clock,
            rng,
            keys,
            clients,
            jwks: JwksCache::new(jwks_source),
            grants: GrantRegistry::standard(),
            notifier,
        })
    }
}
