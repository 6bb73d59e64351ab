//! `POST /token` (RFC 6749 §3.2).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use tessera_core::token::{self, TokenRequest};
use tracing::instrument;

use super::no_store_json;
use crate::AppState;
use crate::error::HttpError;
use crate::extract::{ClientTls, OAuthForm, credentials, dpop_proof};

#[instrument(skip_all, fields(client_id, grant_type))]
pub(super) async fn token(
    State(provider): State<AppState>,
    tls: ClientTls,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<Response, HttpError> {
    tracing::Span::current().record("grant_type", params.get("grant_type"));
    let credentials = credentials(&headers, &params, tls.certificate.as_ref())?;
    let header_auth = credentials.used_authorization_header();
    let dpop = dpop_proof(&headers, "POST", &tls.endpoint(&provider.settings, "/token"))?;
    let request = TokenRequest { params, credentials, dpop, certificate: tls.certificate };
    // RFC 9449 §8: with nonces on, every answer carries the nonce to use next.
    let nonce = provider.settings.dpop_require_nonce.then(|| provider.dpop_nonce(provider.clock.now()));
    let response = token::exchange(&provider, &request)
        .await
        .map_err(|error| HttpError::after_header_auth(error, header_auth).with_dpop_nonce(nonce.clone()))?;
    let body = serde_json::to_string(&response).map_err(tessera_core::OAuthError::server_error)?;
    let mut response = no_store_json(body);
    if let Some(nonce) = nonce.and_then(|nonce| axum::http::HeaderValue::from_str(&nonce).ok()) {
        response.headers_mut().insert("dpop-nonce", nonce);
    }
    Ok(response)
}
