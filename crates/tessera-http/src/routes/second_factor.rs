//! The second sign-in step: `GET|POST /login/second-factor` (an authenticator app's
//! code or a recovery code; a passkey through `passkeys.rs`) and `GET|POST
//! /login/set-up` (setting up an authenticator app when one is required). Both work on
//! the step [`tessera_core::mfa::SecondStep`] named by this browser's cookie.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use tessera_core::authorize;
use tessera_core::mfa::{self, SecondStep, SteppedUp};
use tessera_core::model::User;
use tessera_core::sign_in::SignInError;
use tessera_core::store::Session;

use super::interaction_pages::{load_bound, stale_form};
use crate::extract::cookies::{SECOND_STEP_COOKIE, SESSION_COOKIE};
use crate::extract::{ClientAddress, OAuthForm};
use crate::pages::{SecondFactorPage, SetUpPage, html, qr_svg, see_other};
use crate::{App, AppState};

/// The step this browser is in, and the user it is for; otherwise the page to show.
async fn current_step(app: &App, headers: &HeaderMap) -> Result<(String, SecondStep, User), Response> {
    let Some(cookie) = app.read_cookie(headers, SECOND_STEP_COOKIE) else { return Err(step_expired(app)) };
    let step = match mfa::second_step(app, Some(cookie)).await {
        Ok(Some(step)) => step,
        Ok(None) => return Err(step_expired(app)),
        Err(error) => return Err(crate::error::page(app, &error)),
    };
    match tessera_core::account::user(app, &step.subject).await {
        Ok(Some(user)) => Ok((cookie.to_owned(), step, user)),
        Ok(None) => Err(step_expired(app)),
        Err(error) => Err(crate::error::page(app, &error)),
    }
}

fn step_expired(app: &App) -> Response {
    app.message(
        StatusCode::BAD_REQUEST,
        "This sign-in has expired",
        "Sign in again: the second step must follow the password within ten minutes.",
        None,
    )
}

pub(super) async fn second_factor_page(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let (_, step, user) = match current_step(&app, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if step.enrol {
        return see_other(&app.link("/login/set-up"), Vec::new());
    }
    render(&app, &headers, StatusCode::OK, &user, None).await
}

async fn render(
    app: &App,
    headers: &HeaderMap,
    status: StatusCode,
    user: &User,
    message: Option<&str>,
) -> Response {
    let factors = match mfa::factors(app, &user.subject).await {
        Ok(factors) => factors,
        Err(error) => return crate::error::page(app, &error),
    };
    let csrf = app.csrf(headers);
    let nonce = app.rng.identifier();
    let page = SecondFactorPage {
        base: app.base(),
        csrf_token: csrf.token,
        username: user.username.clone(),
        code: factors.totp || factors.recovery_codes > 0,
        passkey: factors.passkeys > 0 && app.settings.passkey_rp_id.is_some(),
        message: message.map(str::to_owned),
        nonce: nonce.clone(),
    };
    html(status, &page, csrf.set_cookie.into_iter().collect(), Some(&nonce))
}

pub(super) async fn second_factor_submit(
    State(app): State<AppState>,
    ClientAddress(peer): ClientAddress,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    if !app.csrf_valid(&headers, form.get("csrf_token")) {
        return stale_form(&app);
    }
    let (cookie, step, user) = match current_step(&app, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if step.enrol {
        return see_other(&app.link("/login/set-up"), Vec::new());
    }
    let code = form.get("code").unwrap_or_default();
    match mfa::check_code(&app, &user, code, &peer.to_string()).await {
        Ok(Ok(methods)) => finish(&app, &headers, &cookie, methods).await,
        Ok(Err(refusal)) => {
            let (status, message) = refusal_words(&refusal);
            render(&app, &headers, status, &user, Some(message)).await
        }
        Err(error) => crate::error::page(&app, &error),
    }
}

/// What the user is told about a refused code; the same whatever was wrong.
pub(super) fn refusal_words(refusal: &SignInError) -> (StatusCode, &'static str) {
    match refusal {
        SignInError::Invalid => (StatusCode::UNAUTHORIZED, "That code is not right, or was used already."),
        SignInError::Throttled => {
            (StatusCode::TOO_MANY_REQUESTS, "Too many failed attempts. Wait 15 minutes and try again.")
        }
        SignInError::Busy => {
            (StatusCode::SERVICE_UNAVAILABLE, "Tessera is busy. Try again in a few seconds.")
        }
    }
}

/// Ends the step after a verified factor (`methods`) and continues where the sign-in
/// was going.
pub(super) async fn finish(app: &App, headers: &HeaderMap, cookie: &str, methods: &[&str]) -> Response {
    let stepped = match mfa::finish_second_step(app, cookie, methods).await {
        Ok(Some(stepped)) => stepped,
        Ok(None) => return step_expired(app),
        Err(error) => return crate::error::page(app, &error),
    };
    let SteppedUp { session, new_cookie, step } = stepped;
    let signed_in =
        SignedIn { session, new_cookie, interaction: step.interaction, return_to: step.return_to };
    continue_signed_in(app, headers, signed_in).await
}

/// A completed sign-in (or step-up), and where it was going.
pub(super) struct SignedIn {
    pub session: Session,
    /// A new session's cookie value; `None` when an existing session was stepped up.
    pub new_cookie: Option<tessera_core::secret::Secret>,
    pub interaction: Option<String>,
    pub return_to: Option<String>,
}

/// Sets the session cookie (for a new session), ends the second step, and continues:
/// back to the authorization request, to `return_to`, or to the signed-in page.
pub(super) async fn continue_signed_in(app: &App, headers: &HeaderMap, signed_in: SignedIn) -> Response {
    let now = app.clock.now();
    let mut cookies: Vec<HeaderValue> = vec![app.cookie(SECOND_STEP_COOKIE, "", Some(0))];
    if let Some(new_cookie) = &signed_in.new_cookie {
        let lifetime = signed_in.session.expires_at - now;
        cookies.push(app.cookie(SESSION_COOKIE, new_cookie.expose(), Some(lifetime)));
    }
    let SignedIn { session, new_cookie, interaction, return_to } = signed_in;
    if let Some(id) = &interaction {
        if new_cookie.is_some() {
            // A sign-in during the request answers prompt=login and max_age, as after
            // a password alone.
            let mut request = match load_bound(app, headers, id).await {
                Ok(request) => request,
                Err(response) => return response,
            };
            if let Err(error) = authorize::mark_signed_in(app, id, &mut request, &session.subject, now).await
            {
                return crate::error::page(app, &error);
            }
        }
        return see_other(&format!("{}?interaction={id}", app.link("/authorize/resume")), cookies);
    }
    let target = return_to
        .and_then(|path| tessera_core::sign_in::return_target(&app.settings.issuer, &path))
        .unwrap_or_else(|| app.link("/login"));
    see_other(&target, cookies)
}

/// Opens a step for a signed-in user whom a request asks for more: a second factor,
/// or setting one up. Returns the cookie naming it.
pub(super) async fn open_step_up(
    app: &App,
    session_cookie: &str,
    session: &Session,
    interaction: Option<String>,
    return_to: Option<String>,
    enrol: bool,
) -> Result<HeaderValue, tessera_core::OAuthError> {
    let step = SecondStep {
        subject: session.subject.clone(),
        username: session.username.clone(),
        amr: session.amr.clone(),
        auth_time: session.auth_time,
        session: Some(tessera_core::secret::SecretHash::of(session_cookie).to_base64url()),
        interaction,
        return_to,
        enrol,
    };
    let cookie = mfa::open_second_step(app, &step).await?;
    Ok(app.cookie(SECOND_STEP_COOKIE, cookie.expose(), Some(mfa::SECOND_STEP_LIFETIME)))
}

pub(super) async fn set_up_page(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let (_, step, user) = match current_step(&app, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if !step.enrol {
        return see_other(&app.link("/login/second-factor"), Vec::new());
    }
    render_set_up(&app, &headers, StatusCode::OK, &user, None).await
}

/// How a set-up page is shown: where its form posts and why.
pub(super) struct SetUp<'a> {
    pub action: &'a str,
    /// Part of signing in (a client or the server requires a second factor).
    pub required: bool,
    pub status: StatusCode,
    pub message: Option<&'a str>,
}

/// The page setting up an authenticator app for `user`: the enrolment in progress (a
/// reload shows the same secret), or a new one. `None` when a confirmed app exists.
pub(super) async fn totp_set_up(
    app: &App,
    headers: &HeaderMap,
    user: &User,
    page: &SetUp<'_>,
) -> Option<Response> {
    let enrolment = match mfa::pending_totp(app, user).await {
        Ok(Some(enrolment)) => Some(enrolment),
        Ok(None) => match mfa::begin_totp(app, user).await {
            Ok(enrolment) => enrolment,
            Err(error) => return Some(crate::error::page(app, &error)),
        },
        Err(error) => return Some(crate::error::page(app, &error)),
    };
    let enrolment = enrolment?;
    let csrf = app.csrf(headers);
    let body = SetUpPage {
        base: app.base(),
        csrf_token: csrf.token,
        action: app.link(page.action),
        qr_svg: qr_svg(enrolment.uri.expose()),
        uri: enrolment.uri.expose().to_owned(),
        secret: enrolment.secret_base32.expose().to_owned(),
        message: page.message.map(str::to_owned),
        required: page.required,
    };
    Some(html(page.status, &body, csrf.set_cookie.into_iter().collect(), None))
}

async fn render_set_up(
    app: &App,
    headers: &HeaderMap,
    status: StatusCode,
    user: &User,
    message: Option<&str>,
) -> Response {
    let page = SetUp { action: "/login/set-up", required: true, status, message };
    // A confirmed app appeared meanwhile (another tab, the command line).
    totp_set_up(app, headers, user, &page)
        .await
        .unwrap_or_else(|| see_other(&app.link("/login/second-factor"), Vec::new()))
}

pub(super) async fn set_up_submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    if !app.csrf_valid(&headers, form.get("csrf_token")) {
        return stale_form(&app);
    }
    let (cookie, step, user) = match current_step(&app, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if !step.enrol {
        return see_other(&app.link("/login/second-factor"), Vec::new());
    }
    match mfa::confirm_totp(&app, &user.subject, form.get("code").unwrap_or_default()).await {
        // The confirming code proves the app holds the secret: a second factor.
        Ok(true) => finish(&app, &headers, &cookie, &[mfa::amr::ONE_TIME_PASSWORD]).await,
        Ok(false) => {
            tracing::info!(subject = %user.subject, "authenticator set-up refused: wrong code");
            let message = "That code is not right. Enter the code your app shows now.";
            render_set_up(&app, &headers, StatusCode::UNAUTHORIZED, &user, Some(message)).await
        }
        Err(error) => crate::error::page(&app, &error),
    }
}
