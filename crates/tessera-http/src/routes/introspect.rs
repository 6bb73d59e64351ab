//! `POST /introspect` (RFC 7662).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use tessera_core::client_auth::Endpoint;
use tessera_core::introspection;
use tracing::instrument;

use super::no_store_json;
use crate::AppState;
use crate::error::HttpError;
use crate::extract::{ClientTls, OAuthForm, credentials};

#[instrument(skip_all, fields(caller))]
pub(super) async fn introspect(
    State(provider): State<AppState>,
    tls: ClientTls,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<Response, HttpError> {
    let credentials = credentials(&headers, &params, tls.certificate.as_ref())?;
    let header_auth = credentials.used_authorization_header();
    let endpoint = tls.endpoint(&provider.settings, "/introspect");
    let caller = introspection::authenticate_caller(&provider, &credentials, Endpoint { url: &endpoint })
        .await
        .map_err(|error| HttpError::after_header_auth(error, header_auth))?;
    tracing::Span::current().record("caller", format!("{caller:?}"));
    let response = introspection::introspect(&provider, &caller, &params).await?;
    Ok(no_store_json(response.to_string()))
}
