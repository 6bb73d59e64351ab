//! CIBA (OpenID Connect CIBA Core 1.0): `POST /bc-authorize` for the client, and the
//! `/approvals` page where the signed-in user answers.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::{ciba, sign_in};
use tracing::instrument;

use super::login::client_display_name;
use crate::AppState;
use crate::error::HttpError;
use crate::extract::OAuthForm;
use crate::extract::cookies::SESSION_COOKIE;
use crate::pages::{ApprovalsPage, PendingApproval, html, see_other};

#[instrument(skip_all, fields(client_id))]
pub(super) async fn backchannel_authentication(
    State(app): State<AppState>,
    tls: crate::extract::ClientTls,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<Response, HttpError> {
    let client = super::authenticated_client(&app, &headers, &params, &tls, "/bc-authorize").await?;
    let response = ciba::authentication_request(&app, &client.client, &params).await?;
    let mut response = Json(response).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /approvals`: the signed-in user's pending requests.
pub(super) async fn approvals_page(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let Ok(Some(session)) = sign_in::session(&app, app.read_cookie(&headers, SESSION_COOKIE)).await else {
        let return_to: String =
            url::form_urlencoded::byte_serialize(app.link("/approvals").as_bytes()).collect();
        return see_other(&format!("{}?return_to={return_to}", app.link("/login")), Vec::new());
    };
    let pending = match ciba::pending_for(&app, &session.subject).await {
        Ok(pending) => pending,
        Err(error) => return crate::error::page(&app, &error),
    };
    let mut requests = Vec::new();
    for (id, request) in pending {
        let client_name = client_display_name(&app, &request.client_id)
            .await
            .unwrap_or_else(|| request.client_id.to_string());
        let scopes: Vec<&str> = request.scopes.iter().map(|scope| app.catalog.display_name(scope)).collect();
        requests.push(PendingApproval {
            id,
            client_name,
            binding_message: request.binding_message,
            scopes: scopes.join(", "),
        });
    }
    let csrf = app.csrf(&headers);
    let page =
        ApprovalsPage { base: app.base(), csrf_token: csrf.token, username: session.username, requests };
    html(StatusCode::OK, &page, csrf.set_cookie.into_iter().collect(), None)
}

/// `POST /approvals`: Approve or Deny one request.
pub(super) async fn approvals_submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    let session = match super::signed_in_form(&app, &headers, &form, &app.link("/login")).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let approve = form.get("decision") == Some("approve");
    match ciba::decide(&app, &session, form.get("request").unwrap_or_default(), approve).await {
        Ok(()) => see_other(&app.link("/approvals"), Vec::new()),
        Err(error) => {
            if approve
                && let Some(response) =
                    super::approval_step_up(&app, &headers, &session, &error, &app.link("/approvals")).await
            {
                return response;
            }
            app.message(
                StatusCode::BAD_REQUEST,
                "This request can no longer be answered",
                "It expired, was already answered, or is not yours.",
                None,
            )
        }
    }
}
