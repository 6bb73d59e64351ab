//! Routes, one module per endpoint, mirroring the core's endpoints.

mod authorize;
mod consent;
mod discovery;
mod health;
mod introspect;
mod jwks;
mod login;
mod logout;
mod par;
mod revoke;
mod token;
mod userinfo;

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
        .route("/authorize", get(authorize::authorize_get).post(authorize::authorize_post))
        .route("/authorize/resume", get(authorize::resume))
        .route("/login", get(login::login_page).post(login::login_submit))
        .route("/consent", get(consent::consent_page).post(consent::consent_submit))
        .route("/logout", get(logout::logout_page).post(logout::logout_submit))
        .route("/userinfo", get(userinfo::userinfo_get).post(userinfo::userinfo_post))
        .route("/par", post(par::par))
        .route("/assets/tessera.css", get(stylesheet))
}

/// The pages' one stylesheet.
async fn stylesheet() -> Response {
    let mut response = include_str!("../../assets/tessera.css").into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    response
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
