//! `GET|POST /login`: the sign-in page.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use tessera_core::authorize;
use tessera_core::model::ClientId;
use tessera_core::sign_in::{self, Continuation, PasswordAccepted, SignInError};

use super::interaction_pages::{load_bound, stale_form};
use crate::extract::cookies::{SECOND_STEP_COOKIE, SESSION_COOKIE};
use crate::extract::{OAuthForm, parse_form};
use crate::pages::{LoginPage, html, see_other};
use crate::{App, AppState};

pub(super) async fn login_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = parse_form(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let interaction = params.get("interaction").map(str::to_owned);
    let (mut username, mut client_name) = (String::new(), None);
    if let Some(id) = &interaction {
        match load_bound(&app, &headers, id).await {
            Ok(request) => {
                username = request.login_hint.clone().unwrap_or_default();
                client_name = client_display_name(&app, &request.client_id).await;
            }
            Err(response) => return response,
        }
    } else if let Ok(Some(session)) = sign_in::session(&app, app.read_cookie(&headers, SESSION_COOKIE)).await
    {
        return app.message(
            StatusCode::OK,
            "Signed in",
            &format!("You are signed in as {}.", session.username),
            None,
        );
    }
    let return_to =
        params.get("return_to").filter(|path| return_target(&app, path).is_some()).map(str::to_owned);
    render(&app, &headers, StatusCode::OK, interaction, return_to, client_name, username, None)
}

pub(super) async fn login_submit(
    State(app): State<AppState>,
    crate::extract::ClientAddress(peer): crate::extract::ClientAddress,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    if !app.csrf_valid(&headers, form.get("csrf_token")) {
        return stale_form(&app);
    }
    let interaction = form.get("interaction").map(str::to_owned);
    // Checked before any password: another browser cannot sign in into this interaction.
    let request = match &interaction {
        Some(id) => match load_bound(&app, &headers, id).await {
            Ok(request) => Some(request),
            Err(response) => return response,
        },
        None => None,
    };
    let return_to =
        form.get("return_to").filter(|path| return_target(&app, path).is_some()).map(str::to_owned);
    let username = form.get("username").unwrap_or_default().to_owned();
    let password = form.get("password").unwrap_or_default();
    let now = app.clock.now();
    let continuation = Continuation { interaction: interaction.clone(), return_to: return_to.clone() };
    let outcome =
        match sign_in::sign_in(&app, &username, password, &peer.to_string(), &continuation, now).await {
            Ok(outcome) => outcome,
            Err(error) => return crate::error::page(&app, &error),
        };
    let new = match outcome {
        Ok(PasswordAccepted::Session(new)) => new,
        Ok(PasswordAccepted::SecondStep { cookie, enrol }) => {
            let step_cookie = app.cookie(
                SECOND_STEP_COOKIE,
                cookie.expose(),
                Some(tessera_core::mfa::SECOND_STEP_LIFETIME),
            );
            let page = if enrol { "/login/set-up" } else { "/login/second-factor" };
            return see_other(&app.link(page), vec![step_cookie]);
        }
        Err(refusal) => {
            // The same words whether or not the account exists.
            let (status, message) = match refusal {
                SignInError::Invalid => (StatusCode::UNAUTHORIZED, "Incorrect username or password."),
                SignInError::Throttled => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed attempts. Wait 15 minutes and try again.",
                ),
                SignInError::Busy => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Tessera is busy signing other people in. Try again in a few seconds.",
                ),
            };
            let client_name = match &request {
                Some(request) => client_display_name(&app, &request.client_id).await,
                None => None,
            };
            let mut response = render(
                &app,
                &headers,
                status,
                interaction,
                return_to,
                client_name,
                username,
                Some(message.into()),
            );
            if refusal == SignInError::Busy {
                // RFC 9110 §10.2.3: when to try again.
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static(BUSY_RETRY_AFTER));
            }
            return response;
        }
    };
    let lifetime = new.session.expires_at - now;
    let session_cookie = app.cookie(SESSION_COOKIE, new.cookie.expose(), Some(lifetime));
    let (Some(id), Some(mut request)) = (interaction, request) else {
        let target =
            return_to.and_then(|path| return_target(&app, &path)).unwrap_or_else(|| app.link("/login"));
        return see_other(&target, vec![session_cookie]);
    };
    // Answers prompt=login and max_age, for the subject who just proved who they are.
    if let Err(error) = authorize::mark_signed_in(&app, &id, &mut request, &new.session.subject, now).await {
        return crate::error::page(&app, &error);
    }
    see_other(&format!("{}?interaction={id}", app.link("/authorize/resume")), vec![session_cookie])
}

/// Seconds a sign-in refused as busy is told to wait.
const BUSY_RETRY_AFTER: &str = "5";

/// Where a `return_to` leads after sign-in: only on the issuer's own origin.
fn return_target(app: &App, path: &str) -> Option<String> {
    let target = sign_in::return_target(&app.settings.issuer, path);
    if target.is_none() {
        tracing::info!("return_to refused: not a path on this server");
    }
    target
}

#[expect(clippy::too_many_arguments, reason = "the page's fields, passed straight through")]
fn render(
    app: &App,
    headers: &HeaderMap,
    status: StatusCode,
    interaction: Option<String>,
    return_to: Option<String>,
    client_name: Option<String>,
    username: String,
    message: Option<String>,
) -> Response {
    let csrf = app.csrf(headers);
    let passkey_options_url = app.passkeys.as_ref().map(|_| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(id) = &interaction {
            query.append_pair("interaction", id);
        }
        if let Some(path) = &return_to {
            query.append_pair("return_to", path);
        }
        format!("{}?{}", app.link("/passkeys/sign-in/options"), query.finish())
    });
    let nonce = app.rng.identifier();
    let page = LoginPage {
        base: app.base(),
        csrf_token: csrf.token,
        interaction,
        return_to,
        client_name,
        username,
        message,
        passkey_options_url,
        nonce,
    };
    html(
        status,
        &page,
        csrf.set_cookie.into_iter().collect(),
        page.passkey_options_url.as_ref().map(|_| page.nonce.as_str()),
    )
}

pub(super) async fn client_display_name(app: &App, client_id: &ClientId) -> Option<String> {
    let client = app.clients.get(client_id, app.clock.now()).await.ok()??;
    Some(client.client_name.clone())
}
