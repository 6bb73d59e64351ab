//! `/account`: the signed-in user's password, authenticator app, passkeys, recovery
//! codes and sessions. Every change needs a sign-in (or re-verification) from the last
//! five minutes ([`mfa::RECENT_VERIFICATION`]); older sessions are asked for their
//! password or a code first (`/account/verify`).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_core::sign_in::{self, PasswordRefused};
use tessera_core::store::Session;
use tessera_core::{account, mfa};

use super::interaction_pages::stale_form;
use super::second_factor::refusal_words;
use super::second_factor::{SetUp, totp_set_up};
use crate::extract::cookies::SESSION_COOKIE;
use crate::extract::{ClientAddress, OAuthForm, parse_form};
use crate::pages::{
    AccountPage, AccountPasskey, AccountSession, RecoveryCodesPage, VerifyPage, html, see_other,
};
use crate::{App, AppState};

/// The signed-in user's session and its cookie; otherwise the way to sign in.
async fn signed_in(app: &App, headers: &HeaderMap) -> Result<(String, Session), Response> {
    let to_login =
        || see_other(&format!("{}?return_to={}", app.link("/login"), app.link("/account")), Vec::new());
    let Some(cookie) = app.read_cookie(headers, SESSION_COOKIE) else { return Err(to_login()) };
    match sign_in::session(app, Some(cookie)).await {
        Ok(Some(session)) => Ok((cookie.to_owned(), session)),
        Ok(None) => Err(to_login()),
        Err(error) => Err(crate::error::page(app, &error)),
    }
}

/// [`signed_in`], for a change: also recently verified, and the form's CSRF token valid.
async fn may_change(
    app: &App,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<(String, Session), Response> {
    if !app.csrf_valid(headers, csrf) {
        return Err(stale_form(app));
    }
    let (cookie, session) = signed_in(app, headers).await?;
    if !mfa::recently_verified(&session, app.clock.now()) {
        tracing::info!(subject = %session.subject, "account change needs a fresh verification");
        return Err(see_other(&app.link("/account/verify"), Vec::new()));
    }
    Ok((cookie, session))
}

/// A form that changes the account: its CSRF token valid, from a recently verified
/// session. Otherwise the rejection is the page to show (sign in, verify, stale form).
pub(super) struct AccountChange {
    cookie: String,
    session: Session,
    form: tessera_core::request::Params,
}

impl axum::extract::FromRequest<AppState> for AccountChange {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, app: &AppState) -> Result<Self, Response> {
        let headers = request.headers().clone();
        let OAuthForm(form) = OAuthForm::from_request(request, app).await?;
        let (cookie, session) = may_change(app, &headers, form.get("csrf_token")).await?;
        Ok(Self { cookie, session, form })
    }
}

fn back(app: &App, notice: &str) -> Response {
    see_other(&format!("{}?notice={notice}", app.link("/account")), Vec::new())
}

/// Fixed words per notice: nothing from the query string reaches the page.
fn notice_words(notice: &str) -> Option<&'static str> {
    Some(match notice {
        "password" => "Your password was changed. Your other sessions were signed out.",
        "totp" => "Your authenticator app is set up.",
        "totp-removed" => "Your authenticator app was removed.",
        "passkey" => "Your passkey was added.",
        "passkey-removed" => "The passkey was removed.",
        "session-ended" => "The session was signed out.",
        "verified" => "Thank you. You can make changes for the next five minutes.",
        _ => return None,
    })
}

/// Seconds since the epoch as `2026-12-05 12:00 UTC`.
fn when(timestamp: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(timestamp).unwrap_or(0));
    let text = humantime::format_rfc3339_seconds(time).to_string();
    format!("{} UTC", text.get(..16).unwrap_or(&text).replace('T', " "))
}

pub(super) async fn account_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = parse_form(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let (_, session) = match signed_in(&app, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let message = params.get("notice").and_then(notice_words).map(str::to_owned);
    render(&app, &headers, StatusCode::OK, &session, message).await
}

async fn render(
    app: &App,
    headers: &HeaderMap,
    status: StatusCode,
    session: &Session,
    message: Option<String>,
) -> Response {
    let now = app.clock.now();
    let account::Overview { totp, passkeys, recovery_codes, sessions } =
        match account::overview(app, &session.subject).await {
            Ok(overview) => overview,
            Err(error) => return crate::error::page(app, &error),
        };
    let csrf = app.csrf(headers);
    let nonce = app.rng.identifier();
    let page = AccountPage {
        base: app.base(),
        csrf_token: csrf.token,
        username: session.username.clone(),
        message,
        totp,
        passkeys: passkeys
            .into_iter()
            .map(|p| AccountPasskey { id: p.credential_id, name: p.name, added: when(p.created_at) })
            .collect(),
        passkeys_enabled: app.settings.passkey_rp_id.is_some(),
        recovery_codes,
        sessions: sessions
            .into_iter()
            .map(|s| AccountSession {
                current: s.sid == session.sid,
                signed_in: when(s.auth_time),
                methods: s.amr.join(", "),
                sid: s.sid,
            })
            .collect(),
        recent: mfa::recently_verified(session, now),
        nonce: nonce.clone(),
    };
    html(status, &page, csrf.set_cookie.into_iter().collect(), Some(&nonce))
}

pub(super) async fn change_password(
    State(app): State<AppState>,
    headers: HeaderMap,
    AccountChange { cookie, session, form }: AccountChange,
) -> Response {
    let new_password = form.get("new_password").unwrap_or_default();
    if form.get("confirm_password").unwrap_or_default() != new_password {
        let message = "The two new passwords differ.".to_owned();
        return render(&app, &headers, StatusCode::BAD_REQUEST, &session, Some(message)).await;
    }
    match sign_in::change_password(&app, &session.subject, new_password, &cookie).await {
        Ok(Ok(())) => back(&app, "password"),
        Ok(Err(refused)) => {
            let message = match refused {
                PasswordRefused::TooShort => {
                    format!("Choose a password of at least {} characters.", sign_in::MIN_PASSWORD_CHARS)
                }
                PasswordRefused::Configured => "This account's password is set in Tessera's configuration \
                     file. Ask your operator to change it."
                    .to_owned(),
            };
            tracing::info!(subject = %session.subject, ?refused, "password change refused");
            render(&app, &headers, StatusCode::BAD_REQUEST, &session, Some(message)).await
        }
        Err(error) => crate::error::page(&app, &error),
    }
}

pub(super) async fn totp_page(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let (_, session) = match signed_in(&app, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if !mfa::recently_verified(&session, app.clock.now()) {
        return see_other(&app.link("/account/verify"), Vec::new());
    }
    render_totp(&app, &headers, StatusCode::OK, &session, None).await
}

async fn render_totp(
    app: &App,
    headers: &HeaderMap,
    status: StatusCode,
    session: &Session,
    message: Option<&str>,
) -> Response {
    let user = match account::user(app, &session.subject).await {
        Ok(Some(user)) => user,
        Ok(None) => return see_other(&app.link("/login"), Vec::new()),
        Err(error) => return crate::error::page(app, &error),
    };
    let page = SetUp { action: "/account/totp", required: false, status, message };
    // One app per account: with one set up already, back to the account.
    totp_set_up(app, headers, &user, &page).await.unwrap_or_else(|| back(app, "totp"))
}

pub(super) async fn confirm_totp(
    State(app): State<AppState>,
    headers: HeaderMap,
    AccountChange { session, form, .. }: AccountChange,
) -> Response {
    match mfa::confirm_totp(&app, &session.subject, form.get("code").unwrap_or_default()).await {
        Ok(true) => back(&app, "totp"),
        Ok(false) => {
            tracing::info!(subject = %session.subject, "authenticator set-up refused: wrong code");
            let message = "That code is not right. Enter the code your app shows now.";
            render_totp(&app, &headers, StatusCode::UNAUTHORIZED, &session, Some(message)).await
        }
        Err(error) => crate::error::page(&app, &error),
    }
}

pub(super) async fn remove_totp(
    State(app): State<AppState>,
    AccountChange { session, .. }: AccountChange,
) -> Response {
    match account::remove_totp(&app, &session.subject).await {
        Ok(_) => back(&app, "totp-removed"),
        Err(error) => crate::error::page(&app, &error),
    }
}

pub(super) async fn recovery_codes(
    State(app): State<AppState>,
    AccountChange { session, .. }: AccountChange,
) -> Response {
    match mfa::new_recovery_codes(&app, &session.subject).await {
        Ok(codes) => {
            let page = RecoveryCodesPage {
                base: app.base(),
                codes: codes.iter().map(mfa::display_recovery_code).collect(),
            };
            html(StatusCode::OK, &page, Vec::new(), None)
        }
        Err(error) => crate::error::page(&app, &error),
    }
}

pub(super) async fn remove_passkey(
    State(app): State<AppState>,
    AccountChange { session, form, .. }: AccountChange,
) -> Response {
    let id = form.get("credential_id").unwrap_or_default();
    match account::remove_passkey(&app, &session.subject, id).await {
        Ok(true) => back(&app, "passkey-removed"),
        Ok(false) => back(&app, "none"),
        Err(error) => crate::error::page(&app, &error),
    }
}

pub(super) async fn end_session(
    State(app): State<AppState>,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    // Signing a session out takes nothing from the user: no fresh verification needed.
    if !app.csrf_valid(&headers, form.get("csrf_token")) {
        return stale_form(&app);
    }
    let (_, session) = match signed_in(&app, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let sid = form.get("sid").unwrap_or_default();
    match account::end_session(&app, &session.subject, sid).await {
        Ok(ended) => {
            if sid == session.sid {
                return see_other(&app.link("/login"), vec![app.cookie(SESSION_COOKIE, "", Some(0))]);
            }
            back(&app, if ended { "session-ended" } else { "none" })
        }
        Err(error) => crate::error::page(&app, &error),
    }
}

pub(super) async fn verify_page(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let (_, session) = match signed_in(&app, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    render_verify(&app, &headers, StatusCode::OK, &session, None).await
}

async fn render_verify(
    app: &App,
    headers: &HeaderMap,
    status: StatusCode,
    session: &Session,
    message: Option<&str>,
) -> Response {
    let factors = match mfa::factors(app, &session.subject).await {
        Ok(factors) => factors,
        Err(error) => return crate::error::page(app, &error),
    };
    let csrf = app.csrf(headers);
    let page = VerifyPage {
        base: app.base(),
        csrf_token: csrf.token,
        username: session.username.clone(),
        code: factors.totp || factors.recovery_codes > 0,
        message: message.map(str::to_owned),
    };
    html(status, &page, csrf.set_cookie.into_iter().collect(), None)
}

pub(super) async fn verify_submit(
    State(app): State<AppState>,
    ClientAddress(peer): ClientAddress,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    if !app.csrf_valid(&headers, form.get("csrf_token")) {
        return stale_form(&app);
    }
    let (cookie, session) = match signed_in(&app, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let address = peer.to_string();
    let now = app.clock.now();
    let outcome =
        match (form.get("password").filter(|p| !p.is_empty()), form.get("code").filter(|c| !c.is_empty())) {
            (Some(password), _) => sign_in::check_password(&app, &session.username, password, &address, now)
                .await
                .map(|outcome| {
                    outcome.and_then(|user| {
                        if user.subject == session.subject {
                            Ok(())
                        } else {
                            Err(sign_in::SignInError::Invalid)
                        }
                    })
                }),
            (None, Some(code)) => match account::user(&app, &session.subject).await {
                Ok(Some(user)) => {
                    mfa::check_code(&app, &user, code, &address).await.map(|outcome| outcome.map(|_| ()))
                }
                Ok(None) => return see_other(&app.link("/login"), Vec::new()),
                Err(error) => Err(error),
            },
            (None, None) => Ok(Err(sign_in::SignInError::Invalid)),
        };
    match outcome {
        Ok(Ok(())) => match sign_in::mark_verified(&app, &cookie, &session).await {
            Ok(()) => back(&app, "verified"),
            Err(error) => crate::error::page(&app, &error),
        },
        Ok(Err(refusal)) => {
            let (status, message) = refusal_words(&refusal);
            let message =
                if refusal == sign_in::SignInError::Invalid { "That is not right." } else { message };
            render_verify(&app, &headers, status, &session, Some(message)).await
        }
        Err(error) => crate::error::page(&app, &error),
    }
}
