//! Starting and stopping the server.

use std::future::Future;
use std::sync::Arc;

use tessera_config::Config;
use tessera_core::Provider;
use tessera_core::catalog::Catalog;
use tessera_core::clock::Clock;
use tessera_core::random::Rng;
use tessera_store_sql::SqlStore;
use tokio::net::TcpListener;
use tracing::info;

use crate::outbound::HttpJwksSource;
use crate::seed::seed;

/// Why the server could not start.
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// Opens the store (migrating it), loads the configuration into it and assembles
/// the provider with its signing keys.
///
/// # Errors
/// When the store, the seed data or the keys fail.
pub async fn prepare(config: &Config, clock: Arc<dyn Clock>) -> Result<Arc<Provider>, StartError> {
    let store = SqlStore::connect(&config.storage.url).await?;
    info!(backend = ?store.backend(), "store ready");
    seed(&store, config, &Rng::default()).await?;
    let outbound = Arc::new(HttpJwksSource::new()?);
    let provider = Provider::new(
        config.settings.clone(),
        Catalog::new(config.resources.clone()),
        Arc::new(store),
        clock,
        outbound.clone(),
        outbound,
    )
    .await?;
    Ok(Arc::new(provider))
}

/// Serves HTTP on `listener` until `shutdown` completes, then drains in-flight
/// requests; the upkeep tasks run alongside.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    provider: Arc<Provider>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = tessera_http::router(provider.clone()).await.map_err(std::io::Error::other)?;
    let upkeep = crate::upkeep::spawn(&provider);
    info!(address = %listener.local_addr()?, issuer = %provider.settings.issuer, "serving");
    // The peer address feeds the per-address sign-in throttle.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, service).with_graceful_shutdown(shutdown).await;
    for task in upkeep {
        task.abort();
    }
    result
}
