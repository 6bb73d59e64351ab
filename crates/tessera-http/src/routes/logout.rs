//! `GET|POST /logout`: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0
//! §2, §3) and plain sign-out. GET asks; only the POST, with its CSRF token, signs out.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_core::request::Params;
use tessera_core::{end_session, sign_in};

use super::interaction_pages::stale_form;
use crate::AppState;
use crate::extract::cookies::SESSION_COOKIE;
use crate::extract::{OAuthForm, parse_form};
use crate::pages::{LogoutPage, html, see_other};

/// The parameters carried from the question to the answer.
const CARRIED: [&str; 4] = ["id_token_hint", "post_logout_redirect_uri", "state", "client_id"];

pub(super) async fn logout_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match parse_form(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(error) => return crate::error::page(&app, &error),
    };
    let request = match end_session::validate(&app, &params).await {
        Ok(request) => request,
        Err(error) => return crate::error::page(&app, &error),
    };
    let signed_in =
        matches!(sign_in::session(&app, app.read_cookie(&headers, SESSION_COOKIE)).await, Ok(Some(_)));
    let hidden = CARRIED
        .iter()
        .filter_map(|name| params.get(name).map(|value| ((*name).to_owned(), value.to_owned())))
        .collect();
    let csrf = app.csrf(&headers);
    let page = LogoutPage {
        base: app.base(),
        csrf_token: csrf.token,
        signed_in,
        client_name: request.client_name,
        hidden,
    };
    html(StatusCode::OK, &page, csrf.set_cookie.into_iter().collect(), None)
}

pub(super) async fn logout_submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    if !app.csrf_valid(&headers, form.get("csrf_token")) {
        return stale_form(&app);
    }
    let carried = Params::new(
        CARRIED
            .iter()
            .filter_map(|name| form.get(name).map(|v| ((*name).to_owned(), v.to_owned())))
            .collect(),
        Vec::new(),
    );
    let request = match end_session::validate(&app, &carried).await {
        Ok(request) => request,
        Err(error) => return crate::error::page(&app, &error),
    };
    if let Some(value) = app.read_cookie(&headers, SESSION_COOKIE)
        && let Err(error) = sign_in::end_session(&app, value).await
    {
        return crate::error::page(&app, &error);
    }
    tracing::info!("signed out");
    let cleared = app.cookie(SESSION_COOKIE, "", Some(0));
    match request.redirect_location() {
        Some(location) => see_other(&location, vec![cleared]),
        None => {
            let mut response =
                app.message(StatusCode::OK, "Signed out", "You are signed out of Tessera.", None);
            response.headers_mut().append(axum::http::header::SET_COOKIE, cleared);
            response
        }
    }
}
