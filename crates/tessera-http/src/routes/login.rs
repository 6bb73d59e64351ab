//! `GET|POST /login`: the sign-in page.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_core::authorize;
use tessera_core::model::ClientId;
use tessera_core::sign_in::{self, SignInError};

use super::authorize::{expired, untrusted};
use crate::extract::cookies::{SESSION_COOKIE, cookie};
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
        match authorize::load_interaction(&app, id).await {
            Ok(Some(request)) => {
                username = request.login_hint.clone().unwrap_or_default();
                client_name = client_display_name(&app, &request.client_id).await;
            }
            Ok(None) => return expired(&app),
            Err(error) => return untrusted(&app, &error),
        }
    } else if let Ok(Some(session)) = sign_in::session(&app, cookie(&headers, SESSION_COOKIE)).await {
        return app.message(
            StatusCode::OK,
            "Signed in",
            &format!("You are signed in as {}.", session.username),
            None,
        );
    }
    let return_to = params.get("return_to").filter(|path| is_local_path(path)).map(str::to_owned);
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
    let return_to = form.get("return_to").filter(|path| is_local_path(path)).map(str::to_owned);
    let username = form.get("username").unwrap_or_default().to_owned();
    let password = form.get("password").unwrap_or_default();
    let now = app.clock.now();
    let outcome = match sign_in::sign_in(&app, &username, password, &peer.to_string(), now).await {
        Ok(outcome) => outcome,
        Err(error) => return untrusted(&app, &error),
    };
    let new = match outcome {
        Ok(new) => new,
        Err(refusal) => {
            // The same words whether or not the account exists.
            let (status, message) = match refusal {
                SignInError::Invalid => (StatusCode::UNAUTHORIZED, "Incorrect username or password."),
                SignInError::Throttled => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed attempts. Wait 15 minutes and try again.",
                ),
            };
            let client_name = match &interaction {
                Some(id) => match authorize::load_interaction(&app, id).await {
                    Ok(Some(request)) => client_display_name(&app, &request.client_id).await,
                    _ => None,
                },
                None => None,
            };
            return render(
                &app,
                &headers,
                status,
                interaction,
                return_to,
                client_name,
                username,
                Some(message.into()),
            );
        }
    };
    let lifetime = new.session.expires_at - now;
    let session_cookie = app.cookie(SESSION_COOKIE, new.cookie.expose(), Some(lifetime));
    let Some(id) = interaction else {
        let target = return_to.unwrap_or_else(|| app.link("/login"));
        return see_other(&target, vec![session_cookie]);
    };
    match authorize::load_interaction(&app, &id).await {
        Ok(Some(mut request)) => {
            // Answers prompt=login and max_age: the user just proved who they are.
            request.authenticated_at = Some(now);
            if let Err(error) = authorize::save_interaction(&app, &request, Some(&id)).await {
                return untrusted(&app, &error);
            }
            see_other(&format!("{}?interaction={id}", app.link("/authorize/resume")), vec![session_cookie])
        }
        Ok(None) => expired(&app),
        Err(error) => untrusted(&app, &error),
    }
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
    let page = LoginPage {
        base: app.base(),
        csrf_token: csrf.token,
        interaction,
        return_to,
        client_name,
        username,
        message,
    };
    html(status, &page, csrf.set_cookie.into_iter().collect(), None)
}

pub(super) async fn client_display_name(app: &App, client_id: &str) -> Option<String> {
    let client = app.clients.get(&ClientId(client_id.to_owned()), app.clock.now()).await.ok()??;
    Some(client.client_name.clone())
}

/// A path on this server (`/device`), never another origin (`//evil`, `https://…`).
fn is_local_path(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//") && !path.contains('\\')
}

/// A form whose CSRF token does not match this browser's cookie.
pub(super) fn stale_form(app: &App) -> Response {
    tracing::info!("form refused: missing or invalid CSRF token");
    app.message(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "For your security the form could not be accepted. Go back, reload the page and try again.",
        None,
    )
}
