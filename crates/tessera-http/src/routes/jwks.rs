//! `GET /jwks`: the public signing keys (RFC 7517 §5).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::HttpError;

pub(super) async fn jwks(State(provider): State<AppState>) -> Result<Response, HttpError> {
    let keys = provider.keys.key_set(provider.clock.now()).await.map_err(tessera_core::OAuthError::from)?;
    let mut response = keys.jwks().to_owned().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Short enough that verifiers see an announced key well before it signs.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    Ok(response)
}
