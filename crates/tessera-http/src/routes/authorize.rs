//! `GET|POST /authorize` (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1) and its
//! continuation after sign-in and consent.

use std::net::IpAddr;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use tessera_core::authorize::{self, AuthorizationRequest, AuthorizeError, Step};
use tessera_core::request::Params;
use tessera_core::{OAuthError, sign_in};
use tracing::instrument;

use super::interaction_pages::{expired, load_bound};
use crate::extract::cookies::{BROWSER_COOKIE, SESSION_COOKIE};
use crate::extract::{ClientAddress, OAuthForm, parse_form};
use crate::pages::to_client;
use crate::{App, AppState};

#[instrument(skip_all, fields(client_id))]
pub(super) async fn authorize_get(
    State(app): State<AppState>,
    ClientAddress(peer): ClientAddress,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match parse_form(query.unwrap_or_default().as_bytes()) {
        Ok(params) => authorize(&app, &headers, &params, peer).await,
        Err(error) => crate::error::page(&app, &error),
    }
}

#[instrument(skip_all, fields(client_id))]
pub(super) async fn authorize_post(
    State(app): State<AppState>,
    ClientAddress(peer): ClientAddress,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Response {
    authorize(&app, &headers, &params, peer).await
}

async fn authorize(app: &App, headers: &HeaderMap, params: &Params, peer: IpAddr) -> Response {
    tracing::Span::current().record("client_id", params.get("client_id"));
    match authorize::read_request(app, params).await {
        Ok(request) => proceed(app, headers, request, Interaction::New { peer }).await,
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
        return crate::error::page(&app, &OAuthError::invalid_request("missing interaction"));
    };
    match load_bound(&app, &headers, id).await {
        Ok(request) => proceed(&app, &headers, request, Interaction::Open(id)).await,
        Err(response) => response,
    }
}

/// The interaction a request belongs to.
#[derive(Clone, Copy)]
pub(super) enum Interaction<'a> {
    /// A request just received from `peer`: an interaction is opened if one is needed.
    New { peer: IpAddr },
    /// The interaction with this id, already checked to belong to this browser.
    Open(&'a str),
}

/// Moves a request on: to sign-in, to consent, or to the client with a code.
pub(super) async fn proceed(
    app: &App,
    headers: &HeaderMap,
    mut request: AuthorizationRequest,
    interaction: Interaction<'_>,
) -> Response {
    let session = match sign_in::session(app, app.read_cookie(headers, SESSION_COOKIE)).await {
        Ok(session) => session,
        Err(error) => return crate::error::page(app, &error),
    };
    let now = app.clock.now();
    let step = match authorize::next_step(app, &request, session.as_ref(), now).await {
        Ok(step) => step,
        Err(error) => return failed(app, error),
    };
    let mut cookies = Vec::new();
    let page = match step {
        Step::SignIn => "/login",
        Step::Consent => "/consent",
        Step::SecondFactor | Step::SetUpSecondFactor => {
            let (Some(session), Some(cookie)) = (&session, app.read_cookie(headers, SESSION_COOKIE)) else {
                return expired(app);
            };
            // The step continues this interaction; a new request gets one first.
            let id = match interaction {
                Interaction::Open(id) => match authorize::save_interaction(app, &request, Some(id)).await {
                    Ok(id) => id,
                    Err(error) => return crate::error::page(app, &error),
                },
                Interaction::New { peer } => {
                    let Some(browser) = app.read_cookie(headers, BROWSER_COOKIE) else {
                        // No binding cookie yet: open the interaction first, come back.
                        return open_new(app, headers, &mut request, peer, "/authorize/resume").await;
                    };
                    match authorize::open_interaction(app, &mut request, browser, &peer.to_string()).await {
                        Ok(id) => id,
                        Err(error) => return failed(app, error),
                    }
                }
            };
            let enrol = step == Step::SetUpSecondFactor;
            let step_cookie =
                match super::second_factor::open_step_up(app, cookie, session, Some(id.clone()), None, enrol)
                    .await
                {
                    Ok(step_cookie) => step_cookie,
                    Err(error) => return crate::error::page(app, &error),
                };
            cookies.push(step_cookie);
            let page = if enrol { "/login/set-up" } else { "/login/second-factor" };
            return crate::pages::see_other(&app.link(page), cookies);
        }
        Step::Complete => {
            let Some(session) = session else { return expired(app) };
            if let Interaction::Open(id) = interaction {
                // Completing consumes the interaction: a resubmitted form cannot issue twice.
                match authorize::finish_interaction(app, id).await {
                    Ok(Some(_)) => {}
                    Ok(None) => return expired(app),
                    Err(error) => return crate::error::page(app, &error),
                }
            }
            return match authorize::issue_code(app, &request, &session, now).await {
                Ok(redirect) => to_client(app, &redirect, Vec::new()),
                Err(error) => failed(app, request.error(app, &error)),
            };
        }
    };
    let to_page = |id: &str| format!("{}?interaction={id}", app.link(page));
    match interaction {
        Interaction::Open(id) => match authorize::save_interaction(app, &request, Some(id)).await {
            Ok(id) => crate::pages::see_other(&to_page(&id), Vec::new()),
            Err(error) => crate::error::page(app, &error),
        },
        Interaction::New { peer } => open_new(app, headers, &mut request, peer, page).await,
    }
}

/// Opens an interaction for a new request, bound to this browser's binding cookie
/// (minted if absent), and sends the browser to `page` with it.
async fn open_new(
    app: &App,
    headers: &HeaderMap,
    request: &mut AuthorizationRequest,
    peer: IpAddr,
    page: &str,
) -> Response {
    let (browser, set_cookie) = match app.read_cookie(headers, BROWSER_COOKIE) {
        Some(value) => (value.to_owned(), None),
        None => {
            let value = app.rng.token();
            let set = app.cookie(BROWSER_COOKIE, &value, None);
            (value, Some(set))
        }
    };
    match authorize::open_interaction(app, request, &browser, &peer.to_string()).await {
        Ok(id) => crate::pages::see_other(
            &format!("{}?interaction={id}", app.link(page)),
            set_cookie.into_iter().collect(),
        ),
        Err(error) => failed(app, error),
    }
}

/// An authorization error: a page when the client cannot be trusted, else a redirect.
pub(super) fn failed(app: &App, error: AuthorizeError) -> Response {
    match error {
        AuthorizeError::Untrusted(error) => crate::error::page(app, &error),
        AuthorizeError::Redirect { to, .. } => to_client(app, &to, Vec::new()),
    }
}
