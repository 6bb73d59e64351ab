//! `POST /revoke` (RFC 7009).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tessera_core::revocation;
use tracing::instrument;

use crate::AppState;
use crate::error::HttpError;
use crate::extract::OAuthForm;

#[instrument(skip_all, fields(client_id))]
pub(super) async fn revoke(
    State(provider): State<AppState>,
    tls: crate::extract::ClientTls,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<StatusCode, HttpError> {
    let client = super::authenticated_client(&provider, &headers, &params, &tls, "/revoke").await?;
    revocation::revoke(&provider, &client, &params).await?;
    // RFC 7009 §2.2: 200 whether or not the token was valid.
    Ok(StatusCode::OK)
}
