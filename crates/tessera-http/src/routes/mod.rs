//! Routes, one module per endpoint, mirroring the core's endpoints.

mod discovery;
mod health;
mod introspect;
mod jwks;
mod revoke;
mod token;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::AppState;

/// Every route, relative to the issuer's path.
pub(crate) fn all() -> Router<AppState> {
    Router::new()
        .route("/token", post(token::token))
        .route("/introspect", post(introspect::introspect))
        .route("/revoke", post(revoke::revoke))
        .route("/jwks", get(jwks::jwks))
        .route("/.well-known/openid-configuration", get(discovery::openid_configuration))
        .route("/.well-known/oauth-authorization-server", get(discovery::authorization_server))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
}

/// A JSON body that must not be cached (RFC 6749 §5.1, RFC 7662 §2.2).
pub(crate) fn no_store_json(body: String) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
