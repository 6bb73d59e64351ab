//! Tessera's HTTP layer (axum): routes extract a request, call the core, render the
//! answer. OAuth errors become HTTP in one place ([`error`]); pages are askama
//! templates ([`pages`]). No protocol decisions are made here, and nothing here
//! touches SQL.

mod assets;
pub mod connections;
mod cors;
pub mod error;
pub mod extract;
mod pages;
mod routes;
pub mod tls;

use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue};
use tessera_core::{OAuthError, Provider};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// The largest request body accepted: OAuth requests are small forms.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every route shares: the provider and the key that signs CSRF tokens.
pub struct App {
    pub provider: Arc<Provider>,
    csrf_key: aws_lc_rs::hmac::Key,
    /// The issuer's path, prefixed to links in pages.
    base_path: String,
    /// Cookies get `Secure` when the issuer is HTTPS.
    secure_cookies: bool,
    /// Where client certificates come from and which CA issues them.
    tls: TlsOptions,
}

/// Client certificates (RFC 8705): the CA that issues `tls_client_auth` certificates
/// on the TLS listener, and a TLS-terminating proxy trusted to forward them.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    pub client_ca: Option<tls::ClientCa>,
    pub proxy: Option<TrustedProxy>,
}

/// A proxy whose certificate header is believed (from its addresses only).
#[derive(Debug, Clone)]
pub struct TrustedProxy {
    pub trusted_addresses: Vec<(std::net::IpAddr, u8)>,
    pub header: HeaderName,
    pub client_ca: Option<tls::ClientCa>,
}

impl Deref for App {
    type Target = Provider;
    fn deref(&self) -> &Provider {
        &self.provider
    }
}

/// Shared state of every route.
pub type AppState = Arc<App>;

/// The whole HTTP application, mounted at the issuer's path, the administration API
/// included.
///
/// # Errors
/// When the shared CSRF key cannot be read from the store.
pub async fn router(provider: Arc<Provider>, tls: TlsOptions) -> Result<Router, OAuthError> {
    Ok(routers(provider, tls, false).await?.0)
}

/// The application and, when `separate_admin`, the administration API apart from it
/// (for `[admin] listen`: served at `/admin/…` on its own listener, absent from the
/// main one).
///
/// # Errors
/// When the shared CSRF key cannot be read from the store.
pub async fn routers(
    provider: Arc<Provider>,
    tls: TlsOptions,
    separate_admin: bool,
) -> Result<(Router, Option<Router>), OAuthError> {
    // One key for every instance, so a form rendered by one verifies on another.
    let candidate = provider.rng.bytes::<32>();
    let secret = provider.store.shared_secret("csrf-hmac", &candidate).await?;
    let csrf_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
    let base_path = issuer_path(&provider.settings.issuer);
    let secure_cookies = provider.settings.issuer.starts_with("https://");
    let app = Arc::new(App { provider, csrf_key, base_path: base_path.clone(), secure_cookies, tls });
    let mut routes = routes::all();
    if !separate_admin {
        routes = routes.merge(routes::admin_routes());
    }
    let routes = routes.with_state(app.clone());
    let router = if base_path.is_empty() {
        routes
    } else {
        // RFC 8414 §3.1: metadata of an issuer with a path is also found by inserting
        // the well-known segment before that path.
        Router::new()
            .nest(&base_path, routes)
            .merge(routes::path_inserted_metadata(&base_path).with_state(app.clone()))
    };
    let admin = separate_admin.then(|| {
        let admin =
            routes::admin_routes().with_state(app.clone()).layer(axum::Extension(routes::AdminListener));
        common_layers(admin)
    });
    let router = router.layer(axum::middleware::from_fn_with_state(app, cors::cors));
    Ok((common_layers(router), admin))
}

/// What every listener's requests go through: body limit, `nosniff`, the request
/// timeout, panics as 500s, and a span per request.
fn common_layers(router: Router) -> Router {
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
        .layer(axum::middleware::from_fn(error::within_request_timeout))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
}

/// The span of a request: method and path only. Never the query string, which can carry
/// `id_token_hint`, `user_code`, `login_hint` or a code; the default span logs the URI.
fn request_span(request: &axum::extract::Request) -> tracing::Span {
    tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
}

/// The path part of the issuer URL, without a trailing slash ("" for a bare host).
fn issuer_path(issuer: &str) -> String {
    url::Url::parse(issuer).map(|url| url.path().trim_end_matches('/').to_owned()).unwrap_or_default()
}
