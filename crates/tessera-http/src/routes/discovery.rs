//! Discovery documents: OpenID Connect Discovery 1.0 §4 and RFC 8414 §3.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tessera_core::discovery;

use crate::AppState;

pub(super) async fn openid_configuration(State(provider): State<AppState>) -> Response {
    metadata_response(&provider)
}

pub(super) async fn authorization_server(State(provider): State<AppState>) -> Response {
    metadata_response(&provider)
}

fn metadata_response(provider: &tessera_core::Provider) -> Response {
    let mut response = Json(discovery::metadata(provider)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}
