//! Starting and stopping the server.

use std::future::Future;
use std::sync::Arc;

use tessera_config::Config;
use tessera_core::Provider;
use tessera_core::catalog::Catalog;
use tessera_core::clock::Clock;
use tessera_core::random::Rng;
use tessera_http::connections::{self, ConnectionLimits, Connections};
use tessera_http::tls::ClientCa;
use tessera_http::{TlsOptions, TrustedProxy};
use tessera_store_sql::{SqlStore, StoreOptions};
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
    for warning in &config.warnings {
        tracing::warn!(%warning, "weak configuration");
    }
    let options = StoreOptions { acquire_timeout: config.storage.acquire_timeout };
    let store = SqlStore::connect_with(&config.storage.url, options).await?;
    info!(backend = ?store.backend(), "store ready");
    seed(&store, config, &Rng::default(), clock.now()).await?;
    // The file's own jwks_uris are fetched wherever they point; any other only from
    // public addresses (a self-registered client could name an internal one).
    let trusted = config
        .clients
        .iter()
        .flat_map(|client| &client.credentials)
        .filter_map(|credential| match credential {
            tessera_core::model::ClientCredential::JwksUri { jwks_uri, .. } => Some(jwks_uri.clone()),
            _ => None,
        })
        .collect();
    let outbound = Arc::new(HttpJwksSource::new(trusted)?);
    let provider = Provider::new(
        config.settings.clone(),
        Catalog::new(config.resources.clone()),
        Arc::new(store),
        clock,
        outbound.clone(),
        outbound,
        Arc::new(crate::outbound::HttpDocumentSource),
    )
    .await?;
    Ok(Arc::new(provider))
}

/// The sockets to serve on: plain HTTP, and TLS when `[server.tls]` is configured,
/// with the connection cap and timeouts they share.
pub struct Listeners {
    pub http: TcpListener,
    pub tls: Option<TcpListener>,
    /// `[admin] listen`: the administration API alone, apart from the rest.
    pub admin: Option<TcpListener>,
    pub limits: ConnectionLimits,
}

/// The connection limits `[server]` configures, in the HTTP layer's terms.
#[must_use]
pub fn connection_limits(config: &Config) -> ConnectionLimits {
    let limits = config.server.connections;
    ConnectionLimits {
        header_read_timeout: limits.header_read_timeout,
        idle_timeout: limits.idle_timeout,
        max_connections: limits.max_connections,
    }
}

/// Raises the soft limit on open descriptors to the hard limit: each connection
/// holds one, and the usual soft limit of 1,024 let about a thousand idle clients
/// lock every other one out. Returns the limit now in force.
pub fn raise_descriptor_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            info!(limit, "open descriptor limit");
            Some(limit)
        }
        Err(error) => {
            tracing::warn!(%error, "could not raise the open descriptor limit");
            None
        }
    }
}

impl Listeners {
    /// Binds the addresses the configuration names.
    ///
    /// # Errors
    /// When an address cannot be bound.
    pub async fn bind(config: &Config) -> std::io::Result<Self> {
        let http = TcpListener::bind(config.server.listen).await?;
        let tls = match &config.server.tls {
            Some(tls) => Some(TcpListener::bind(tls.listen).await?),
            None => None,
        };
        let admin = match config.server.admin_listen {
            Some(address) => Some(TcpListener::bind(address).await?),
            None => None,
        };
        Ok(Self { http, tls, admin, limits: connection_limits(config) })
    }
}

/// The TLS listener's configuration and where client certificates come from, read
/// once from the configured files.
pub struct TlsSetup {
    pub listener: Option<rustls::ServerConfig>,
    pub options: TlsOptions,
}

/// Reads the TLS listener's certificate and key, and the client CAs, as configured.
///
/// # Errors
/// When a file cannot be read or holds no usable certificate or key.
pub fn tls_setup(config: &Config) -> Result<TlsSetup, StartError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
    };
    let client_ca = |path: Option<&std::path::Path>| -> Result<Option<ClientCa>, StartError> {
        let Some(path) = path else { return Ok(None) };
        let ca = ClientCa::from_pem(&read(path)?).map_err(|error| format!("{}: {error}", path.display()))?;
        Ok(Some(ca))
    };
    let mut options = TlsOptions::default();
    let listener = match &config.server.tls {
        Some(tls) => {
            options.client_ca = client_ca(tls.client_ca.as_deref())?;
            let server_config = tessera_http::tls::server_config(
                &read(&tls.cert)?,
                &read(&tls.key)?,
                options.client_ca.as_ref(),
            )
            .map_err(|error| format!("[server.tls]: {error}"))?;
            Some(server_config)
        }
        None => None,
    };
    if let Some(proxy) = &config.server.proxy {
        let header =
            axum::http::HeaderName::from_bytes(proxy.client_cert_header.to_ascii_lowercase().as_bytes())?;
        let client_ca = match proxy.client_ca.as_deref() {
            Some(path) => client_ca(Some(path))?,
            None => options.client_ca.clone(),
        };
        options.proxy =
            Some(TrustedProxy { trusted_addresses: proxy.trusted_addresses.clone(), header, client_ca });
    }
    Ok(TlsSetup { listener, options })
}

/// Serves HTTP (and TLS, when configured) until `shutdown` completes, then drains
/// in-flight requests; the upkeep tasks run alongside.
///
/// # Errors
/// When a listener fails.
pub async fn serve(
    provider: Arc<Provider>,
    tls: TlsSetup,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let (router, admin_router) =
        tessera_http::routers(provider.clone(), tls.options, listeners.admin.is_some())
            .await
            .map_err(std::io::Error::other)?;
    let upkeep = crate::upkeep::spawn(&provider);
    info!(address = %listeners.http.local_addr()?, issuer = %provider.settings.issuer, "serving");
    // One shutdown signal for both listeners.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let connections = Connections::new(listeners.limits);
    let tls_task = match (listeners.tls, tls.listener) {
        (Some(listener), Some(tls_config)) => Some(tokio::spawn(tessera_http::tls::serve_limited(
            listener,
            Arc::new(tls_config),
            router.clone(),
            connections.clone(),
            until_stopped(),
        ))),
        _ => None,
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    // The peer address (for the per-address sign-in throttle) goes into every request
    // as `ConnectInfo`, as `axum::serve` would put it.
    let plain = |stream: connections::Tracked<tokio::net::TcpStream>, _peer: std::net::SocketAddr| async move {
        Some((stream, axum::http::Extensions::new()))
    };
    let admin_task = match (listeners.admin, admin_router) {
        (Some(listener), Some(admin_router)) => {
            info!(address = %listener.local_addr()?, "serving the administration API apart");
            Some(tokio::spawn(connections::serve(
                listener,
                admin_router,
                connections.clone(),
                plain,
                until_stopped(),
            )))
        }
        _ => None,
    };
    let result = connections::serve(listeners.http, router, connections, plain, until_stopped()).await;
    if let Some(task) = admin_task {
        task.await.map_err(std::io::Error::other)??;
    }
    if let Some(task) = tls_task {
        task.await.map_err(std::io::Error::other)??;
    }
    for task in upkeep {
        task.abort();
    }
    Ok(result?)
}
