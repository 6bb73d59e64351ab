//! `GET|POST /authorize` (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1) and its
//! continuation after sign-in and consent.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_core::authorize::{self, AuthorizationRequest, AuthorizeError, Step};
use tessera_core::request::Params;
use tessera_core::{OAuthError, sign_in};
use tracing::instrument;

use crate::extract::cookies::{SESSION_COOKIE, cookie};
use crate::extract::{OAuthForm, parse_form};
use crate::pages::to_client;
use crate::{App, AppState};

#[instrument(skip_all, fields(client_id))]
pub(super) async fn authorize_get(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match parse_form(query.unwrap_or_default().as_bytes()) {
        Ok(params) => authorize(&app, &headers, &params).await,
        Err(error) => untrusted(&app, &error),
    }
}

#[instrument(skip_all, fields(client_id))]
pub(super) async fn authorize_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Response {
    authorize(&app, &headers, &params).await
}

async fn authorize(app: &App, headers: &HeaderMap, params: &Params) -> Response {
    tracing::Span::current().record("client_id", params.get("client_id"));
    match authorize::read_request(app, params).await {
        Ok(request) => proceed(app, headers, request, None).await,
        Err(error) => failed(app, error),
    }
}

/// `GET /authorize/resume?interaction=…`: where sign-in returns to.
pub(super) async fn resume(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = parse_form(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let Some(id) = params.get("interaction") else {
        return untrusted(&app, &OAuthError::invalid_request("missing interaction"));
    };
    match authorize::load_interaction(&app, id).await {
        Ok(Some(request)) => proceed(&app, &headers, request, Some(id.to_owned())).await,
        Ok(None) => expired(&app),
        Err(error) => untrusted(&app, &error),
    }
}

/// Moves a request on: to sign-in, to consent, or to the client with a code.
pub(super) async fn proceed(
    app: &App,
    headers: &HeaderMap,
    request: AuthorizationRequest,
    interaction: Option<String>,
) -> Response {
    let session = match sign_in::session(app, cookie(headers, SESSION_COOKIE)).await {
        Ok(session) => session,
        Err(error) => return untrusted(app, &error),
    };
    let now = app.clock.now();
    let step = match authorize::next_step(app, &request, session.as_ref(), now).await {
        Ok(step) => step,
        Err(error) => return failed(app, error),
    };
    let page = match step {
        Step::SignIn => "/login",
        Step::Consent => "/consent",
        Step::Complete => {
            let Some(session) = session else { return expired(app) };
            if let Some(id) = &interaction {
                // Completing consumes the interaction: a resubmitted form cannot issue twice.
                match authorize::finish_interaction(app, id).await {
                    Ok(Some(_)) => {}
                    Ok(None) => return expired(app),
                    Err(error) => return untrusted(app, &error),
                }
            }
            return match authorize::issue_code(app, &request, &session, now).await {
                Ok(redirect) => to_client(app, &redirect, Vec::new()),
                Err(error) => failed(app, request.error(app, &error)),
            };
        }
    };
    match authorize::save_interaction(app, &request, interaction.as_deref()).await {
        Ok(id) => crate::pages::see_other(&format!("{}?interaction={id}", app.link(page)), Vec::new()),
        Err(error) => untrusted(app, &error),
    }
}

/// An authorization error: a page when the client cannot be trusted, else a redirect.
pub(super) fn failed(app: &App, error: AuthorizeError) -> Response {
    match error {
        AuthorizeError::Untrusted(error) => untrusted(app, &error),
        AuthorizeError::Redirect { to, .. } => to_client(app, &to, Vec::new()),
    }
}

/// RFC 6749 §4.1.2.1: without a trusted client and redirect URI, tell the user and
/// redirect nowhere.
pub(super) fn untrusted(app: &App, error: &OAuthError) -> Response {
    tracing::info!(error = error.code.as_str(), description = %error.description, cause = ?error.source, "authorization request refused");
    let status = crate::error::page_status(error.code);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // The store is unreachable for now: nothing is wrong with the request.
        let mut page =
            app.message(status, "Tessera is temporarily unavailable", "Please try again in a moment.", None);
        crate::error::unavailable_headers(&mut page);
        return page;
    }
    app.message(
        status,
        "This sign-in request cannot be completed",
        "The application sent a request Tessera cannot accept. Go back to the application and try again.",
        Some(format!("{}: {}", error.code.as_str(), error.description)),
    )
}

pub(super) fn expired(app: &App) -> Response {
    app.message(
        StatusCode::BAD_REQUEST,
        "This sign-in request has expired",
        "Go back to the application and start signing in again.",
        None,
    )
}
