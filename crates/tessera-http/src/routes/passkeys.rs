//! The passkey ceremonies behind `passkeys.js`: each has `…/options` (JSON options for
//! `navigator.credentials`) and a finish that answers `{"redirect": …}`. Forms carry the
//! page's CSRF token; errors are the RFC 6749 JSON body, whose `error_description` the
//! script shows.
//!
//! - `/passkeys/register`: add a passkey on `/account` (recently verified session).
//! - `/passkeys/sign-in`: sign in with a passkey alone (`Sign in with a passkey`).
//! - `/passkeys/second-factor`: the second step after a password (`Use a passkey`).

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::OAuthError;
use tessera_core::mfa;
use tessera_core::passkey_ceremonies::{self, PasskeyRefused, Started};

use super::interaction_pages::load_bound;
use super::second_factor::{SignedIn, continue_signed_in, finish};
use crate::error::HttpError;
use crate::extract::cookies::{SECOND_STEP_COOKIE, SESSION_COOKIE};
use crate::extract::{OAuthForm, parse_form};
use crate::{App, AppState};

fn error(error: OAuthError) -> Response {
    HttpError::from(error).into_response()
}

fn stale() -> Response {
    tracing::info!("passkey request refused: missing or invalid CSRF token");
    error(OAuthError::access_denied("This page has expired. Reload it and try again."))
}

/// A ceremony's form with the page's CSRF token checked; otherwise the refusal.
pub(super) struct CeremonyForm(tessera_core::request::Params);

impl axum::extract::FromRequest<AppState> for CeremonyForm {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, app: &AppState) -> Result<Self, Response> {
        let headers = request.headers().clone();
        let OAuthForm(form) = OAuthForm::from_request(request, app).await?;
        if !app.csrf_valid(&headers, form.get("csrf_token")) {
            return Err(stale());
        }
        Ok(Self(form))
    }
}

fn started(started: Result<Started, OAuthError>) -> Response {
    match started {
        Ok(Started { ceremony, options }) => {
            let mut response = Json(serde_json::json!({ "ceremony": ceremony.expose(), "options": options }))
                .into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(refusal) => error(refusal),
    }
}

fn refused(refusal: &PasskeyRefused) -> Response {
    let message = match refusal {
        PasskeyRefused::Expired => "This took too long. Try again.",
        PasskeyRefused::NotVerified => "That passkey could not be verified.",
        PasskeyRefused::AlreadyRegistered => "This passkey is registered already.",
    };
    error(OAuthError::access_denied(message))
}

/// A page's answer (a 303 and its cookies) as the script's JSON `{"redirect": …}`.
fn as_json(response: Response) -> Response {
    if response.status() != StatusCode::SEE_OTHER {
        return error(OAuthError::access_denied("The sign-in could not continue. Start again."));
    }
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let cookies: Vec<HeaderValue> = response.headers().get_all(header::SET_COOKIE).iter().cloned().collect();
    let mut json = Json(serde_json::json!({ "redirect": location })).into_response();
    let headers = json.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
    json
}

/// The authenticator's answer (`response`, JSON); `None` when it is not JSON.
fn response_of(form: &tessera_core::request::Params) -> Option<serde_json::Value> {
    let parsed = serde_json::from_str(form.get("response").unwrap_or_default()).ok();
    if parsed.is_none() {
        tracing::info!("passkey answer refused: not JSON");
    }
    parsed
}

fn not_a_credential() -> Response {
    error(OAuthError::invalid_request("response is not a WebAuthn credential"))
}

/// The signed-in, recently verified user of this browser.
async fn account_user(app: &App, headers: &HeaderMap) -> Result<tessera_core::model::User, Response> {
    let session = tessera_core::sign_in::session(app, app.read_cookie(headers, SESSION_COOKIE))
        .await
        .map_err(error)?
        .ok_or_else(|| error(OAuthError::access_denied("Sign in first.")))?;
    if !mfa::recently_verified(&session, app.clock.now()) {
        return Err(error(OAuthError::access_denied("Confirm it's you first: reload the page.")));
    }
    tessera_core::account::user(app, &session.subject)
        .await
        .map_err(error)?
        .ok_or_else(|| error(OAuthError::access_denied("Sign in first.")))
}

pub(super) async fn register_options(
    State(app): State<AppState>,
    headers: HeaderMap,
    _: CeremonyForm,
) -> Response {
    match account_user(&app, &headers).await {
        Ok(user) => started(passkey_ceremonies::start_registration(&app, &user).await),
        Err(response) => response,
    }
}

pub(super) async fn register(
    State(app): State<AppState>,
    headers: HeaderMap,
    CeremonyForm(form): CeremonyForm,
) -> Response {
    let user = match account_user(&app, &headers).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let Some(response) = response_of(&form) else { return not_a_credential() };
    let name: String =
        form.get("name").unwrap_or_default().chars().take(tessera_core::passkeys::MAX_NAME_CHARS).collect();
    let ceremony = form.get("ceremony").unwrap_or_default();
    match passkey_ceremonies::finish_registration(&app, ceremony, &user.subject, &response, &name).await {
        Ok(Ok(())) => {
            as_json(crate::pages::see_other(&format!("{}?notice=passkey", app.link("/account")), Vec::new()))
        }
        Ok(Err(refusal)) => refused(&refusal),
        Err(refusal) => error(refusal),
    }
}

pub(super) async fn sign_in_options(
    State(app): State<AppState>,
    crate::extract::ClientAddress(peer): crate::extract::ClientAddress,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    _: CeremonyForm,
) -> Response {
    let query = parse_form(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let interaction = query.get("interaction").map(str::to_owned);
    if let Some(id) = &interaction
        && load_bound(&app, &headers, id).await.is_err()
    {
        return error(OAuthError::access_denied("This sign-in request has expired."));
    }
    let return_to = query
        .get("return_to")
        .filter(|path| tessera_core::sign_in::return_target(&app.settings.issuer, path).is_some())
        .map(str::to_owned);
    started(passkey_ceremonies::start_sign_in(&app, interaction, return_to, &peer.to_string()).await)
}

pub(super) async fn sign_in(
    State(app): State<AppState>,
    headers: HeaderMap,
    CeremonyForm(form): CeremonyForm,
) -> Response {
    let Some(response) = response_of(&form) else { return not_a_credential() };
    let ceremony = form.get("ceremony").unwrap_or_default();
    match passkey_ceremonies::finish_sign_in(&app, ceremony, &response).await {
        Ok(Ok(signed_in)) => {
            let continued = continue_signed_in(
                &app,
                &headers,
                SignedIn {
                    session: signed_in.new.session,
                    new_cookie: Some(signed_in.new.cookie),
                    interaction: signed_in.interaction,
                    return_to: signed_in.return_to,
                },
            )
            .await;
            as_json(continued)
        }
        Ok(Err(refusal)) => refused(&refusal),
        Err(refusal) => error(refusal),
    }
}

/// The subject of this browser's second step, and the step's cookie.
async fn second_step(app: &App, headers: &HeaderMap) -> Result<(String, String), Response> {
    let cookie = app.read_cookie(headers, SECOND_STEP_COOKIE);
    match mfa::second_step(app, cookie).await {
        Ok(Some(step)) if !step.enrol => Ok((cookie.unwrap_or_default().to_owned(), step.subject)),
        Ok(_) => Err(error(OAuthError::access_denied("This sign-in has expired. Sign in again."))),
        Err(refusal) => Err(error(refusal)),
    }
}

pub(super) async fn second_factor_options(
    State(app): State<AppState>,
    headers: HeaderMap,
    _: CeremonyForm,
) -> Response {
    match second_step(&app, &headers).await {
        Ok((_, subject)) => started(passkey_ceremonies::start_second_factor(&app, &subject).await),
        Err(response) => response,
    }
}

pub(super) async fn second_factor(
    State(app): State<AppState>,
    headers: HeaderMap,
    CeremonyForm(form): CeremonyForm,
) -> Response {
    let (cookie, subject) = match second_step(&app, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(response) = response_of(&form) else { return not_a_credential() };
    let ceremony = form.get("ceremony").unwrap_or_default();
    match passkey_ceremonies::finish_second_factor(&app, ceremony, &subject, &response).await {
        Ok(Ok(methods)) => as_json(finish(&app, &headers, &cookie, &methods).await),
        Ok(Err(refusal)) => refused(&refusal),
        Err(refusal) => error(refusal),
    }
}
