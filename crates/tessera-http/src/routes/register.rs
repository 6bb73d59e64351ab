//! `POST /register` (RFC 7591 §3) and `GET`/`PUT`/`DELETE /register/{client_id}`
//! (RFC 7592 §2), present when `[registration] enabled`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::registration;
use tracing::instrument;

use crate::AppState;
use crate::error::HttpError;
use crate::extract::ClientAddress;

/// The token of an `Authorization: Bearer` header (RFC 6750 §2.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

/// A registration answer (RFC 7591 §3.2.1): JSON, never cached.
fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Admits a request only while `[registration] enabled`; otherwise the endpoint is
/// not there (404).
pub(super) struct RegistrationOn;

impl axum::extract::FromRequestParts<AppState> for RegistrationOn {
    type Rejection = StatusCode;

    async fn from_request_parts(
        _: &mut axum::http::request::Parts,
        app: &AppState,
    ) -> Result<Self, StatusCode> {
        if app.settings.registration.enabled { Ok(Self) } else { Err(StatusCode::NOT_FOUND) }
    }
}

#[instrument(skip_all)]
pub(super) async fn register(
    State(app): State<AppState>,
    _: RegistrationOn,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    registration::admit(&app, bearer(&headers))?;
    let metadata = registration::parse(&body)?;
    let body = registration::register(&app, metadata, &address.to_string()).await?;
    Ok(answer(StatusCode::CREATED, body))
}

#[instrument(skip_all)]
pub(super) async fn read(
    State(app): State<AppState>,
    _: RegistrationOn,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let body = registration::read(&app, &client_id, bearer(&headers)).await?;
    Ok(answer(StatusCode::OK, body))
}

#[instrument(skip_all)]
pub(super) async fn replace(
    State(app): State<AppState>,
    _: RegistrationOn,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let body = registration::replace(&app, &client_id, bearer(&headers), &body).await?;
    Ok(answer(StatusCode::OK, body))
}

#[instrument(skip_all)]
pub(super) async fn delete(
    State(app): State<AppState>,
    _: RegistrationOn,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    registration::delete(&app, &client_id, bearer(&headers)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
