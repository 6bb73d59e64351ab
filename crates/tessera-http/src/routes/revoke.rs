//! `POST /revoke` (RFC 7009).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tessera_core::client_auth::{self, Endpoint};
use tessera_core::revocation;
use tracing::instrument;

use crate::AppState;
use crate::error::HttpError;
use crate::extract::{OAuthForm, credentials};

#[instrument(skip_all, fields(client_id))]
pub(super) async fn revoke(
    State(provider): State<AppState>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<StatusCode, HttpError> {
    let credentials = credentials(&headers, &params)?;
    let header_auth = credentials.used_authorization_header();
    let endpoint = provider.settings.endpoint("/revoke");
    let client = client_auth::authenticate(&provider, &credentials, Endpoint { url: &endpoint })
        .await
        .map_err(|error| HttpError::after_header_auth(error, header_auth))?;
    tracing::Span::current().record("client_id", client.client.client_id.as_str());
    revocation::revoke(&provider, &client, &params).await?;
    // RFC 7009 §2.2: 200 whether or not the token was valid.
    Ok(StatusCode::OK)
}
