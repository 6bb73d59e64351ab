//! Tessera's HTTP layer (axum): routes extract a request, call the core, render the
//! answer. OAuth errors become HTTP in one place ([`error`]). No protocol decisions
//! are made here, and nothing here touches SQL.

pub mod error;
pub mod extract;
mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use tessera_core::Provider;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// The largest request body accepted: OAuth requests are small forms.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Shared state of every route.
pub type AppState = Arc<Provider>;

/// The whole HTTP application, mounted at the issuer's path.
pub fn router(provider: Arc<Provider>) -> Router {
    let prefix = issuer_path(&provider.settings.issuer);
    let routes = routes::all().with_state(provider);
    let app = if prefix.is_empty() { routes } else { Router::new().nest(&prefix, routes) };
    app.layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(30)))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http())
}

/// The path part of the issuer URL, without a trailing slash ("" for a bare host).
fn issuer_path(issuer: &str) -> String {
    url::Url::parse(issuer).map(|url| url.path().trim_end_matches('/').to_owned()).unwrap_or_default()
}
