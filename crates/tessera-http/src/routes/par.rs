//! `POST /par`: Pushed Authorization Requests (RFC 9126 §2).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_core::OAuthError;
use tessera_core::authorize::{self, AuthorizeError, PUSHED_REQUEST_LIFETIME};
use tracing::instrument;

use crate::AppState;
use crate::error::HttpError;
use crate::extract::OAuthForm;

#[instrument(skip_all, fields(client_id))]
pub(super) async fn par(
    State(app): State<AppState>,
    tls: crate::extract::ClientTls,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<Response, HttpError> {
    let client = super::authenticated_client(&app, &headers, &params, &tls, "/par").await?;
    if params.get("client_id").is_some_and(|id| id != client.client.client_id.as_str()) {
        return Err(OAuthError::invalid_request("client_id differs from the authenticated client").into());
    }
    // RFC 9126 §2.3: errors are answered here as JSON, never redirected.
    let request = authorize::validate(&app, &params, true).await.map_err(|error| match error {
        AuthorizeError::Untrusted(error) | AuthorizeError::Redirect { error, .. } => HttpError::from(error),
    })?;
    let request_uri = authorize::push(&app, &request).await?;
    let body = json!({ "request_uri": request_uri, "expires_in": PUSHED_REQUEST_LIFETIME });
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
