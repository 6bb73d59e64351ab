//! The device flow (RFC 8628): `POST /device_authorization` for the device, and the
//! `/device` page where the user enters the code, signs in and approves.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::device::UserCodeCheck;
use tessera_core::{device, sign_in};
use tracing::instrument;

use super::interaction_pages::stale_form;
use super::login::client_display_name;
use crate::error::HttpError;
use crate::extract::cookies::SESSION_COOKIE;
use crate::extract::{OAuthForm, parse_form};
use crate::pages::{DevicePage, html, see_other};
use crate::{App, AppState};

#[instrument(skip_all, fields(client_id))]
pub(super) async fn device_authorization(
    State(app): State<AppState>,
    tls: crate::extract::ClientTls,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<Response, HttpError> {
    let client = super::authenticated_client(&app, &headers, &params, &tls, "/device_authorization").await?;
    let authorization = device::authorize(&app, &client.client, &params).await?;
    let mut response = Json(authorization).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Marks the return from sign-in, whose code the user already entered and submitted.
const AFTER_SIGN_IN: &str = "after_sign_in";

/// `GET /device[?user_code=…]`: the code entry form, prefilled from
/// `verification_uri_complete`; the user still confirms on the next page (§5.4).
/// Back from sign-in with the code they submitted: straight to Approve or Deny.
pub(super) async fn device_page(
    State(app): State<AppState>,
    crate::extract::ClientAddress(peer): crate::extract::ClientAddress,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = parse_form(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let user_code = params.get("user_code").unwrap_or_default().to_owned();
    if params.get(AFTER_SIGN_IN).is_some()
        && !user_code.is_empty()
        && let Ok(Some(session)) = sign_in::session(&app, app.read_cookie(&headers, SESSION_COOKIE)).await
    {
        return review(&app, &headers, peer, user_code, session).await;
    }
    entry_page(&app, &headers, StatusCode::OK, user_code, None)
}

/// `POST /device`: checks the code, then asks the signed-in user to approve.
pub(super) async fn device_submit(
    State(app): State<AppState>,
    crate::extract::ClientAddress(peer): crate::extract::ClientAddress,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    if !app.csrf_valid(&headers, form.get("csrf_token")) {
        return stale_form(&app);
    }
    let user_code = form.get("user_code").unwrap_or_default().to_owned();
    let Ok(Some(session)) = sign_in::session(&app, app.read_cookie(&headers, SESSION_COOKIE)).await else {
        let return_to =
            format!("{}?user_code={}&{AFTER_SIGN_IN}=1", app.link("/device"), urlencode(&user_code));
        return see_other(&format!("{}?return_to={}", app.link("/login"), urlencode(&return_to)), Vec::new());
    };
    review(&app, &headers, peer, user_code, session).await
}

/// Checks the code (throttled per address, so the return from sign-in is no way around
/// the limit) and shows the client and scopes with Approve and Deny.
async fn review(
    app: &App,
    headers: &HeaderMap,
    peer: std::net::IpAddr,
    user_code: String,
    session: tessera_core::store::Session,
) -> Response {
    // RFC 8628 §5.1: user codes are short, so attempts are rate-limited (with the
    // decision path: one counter per address).
    let request = match device::check_user_code(app, &user_code, &peer.to_string()).await {
        Ok(UserCodeCheck::Pending { request, .. }) => request,
        Ok(UserCodeCheck::Throttled) => return throttled(app, headers, user_code),
        Ok(UserCodeCheck::Unknown) => {
            let message = "That code is not valid or has expired. Check your device and try again.";
            return entry_page(app, headers, StatusCode::BAD_REQUEST, user_code, Some(message));
        }
        Err(error) => return crate::error::page(app, &error),
    };
    let client_name =
        client_display_name(app, &request.client_id).await.unwrap_or_else(|| request.client_id.to_string());
    let scopes = request.scopes.iter().map(|scope| app.catalog.display_name(scope).to_owned()).collect();
    let csrf = app.csrf(headers);
    let page = DevicePage {
        base: app.base(),
        csrf_token: csrf.token,
        user_code: request.user_code.as_deref().map(device::display).unwrap_or(user_code),
        client_name: Some(client_name),
        scopes,
        username: session.username,
        message: None,
    };
    html(StatusCode::OK, &page, csrf.set_cookie.into_iter().collect(), None)
}

/// `POST /device/decision`: Approve or Deny.
pub(super) async fn device_decision(
    State(app): State<AppState>,
    crate::extract::ClientAddress(peer): crate::extract::ClientAddress,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    let session = match super::signed_in_form(&app, &headers, &form, &app.link("/device")).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let approve = form.get("decision") == Some("approve");
    let user_code = form.get("user_code").unwrap_or_default();
    match device::decide(&app, user_code, &session, approve, &peer.to_string()).await {
        Ok(UserCodeCheck::Pending { .. }) if approve => {
            app.message(StatusCode::OK, "Device connected", "You can return to your device now.", None)
        }
        Ok(UserCodeCheck::Pending { .. }) => {
            app.message(StatusCode::OK, "Request denied", "The device was not connected.", None)
        }
        Ok(UserCodeCheck::Throttled) => throttled(&app, &headers, user_code.to_owned()),
        Err(error) if approve => {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("user_code", user_code)
                .finish();
            let back = format!("{}?{query}", app.link("/device"));
            match super::approval_step_up(&app, &headers, &session, &error, &back).await {
                Some(response) => response,
                None => code_gone(&app),
            }
        }
        Ok(UserCodeCheck::Unknown) | Err(_) => code_gone(&app),
    }
}

fn code_gone(app: &App) -> Response {
    app.message(
        StatusCode::BAD_REQUEST,
        "This code can no longer be used",
        "It expired or was already used. Start again on your device.",
        None,
    )
}

/// RFC 8628 §5.1: too many user-code attempts from this address.
fn throttled(app: &App, headers: &HeaderMap, user_code: String) -> Response {
    let message = "Too many attempts. Wait 15 minutes and try again.";
    entry_page(app, headers, StatusCode::TOO_MANY_REQUESTS, user_code, Some(message))
}

fn entry_page(
    app: &App,
    headers: &HeaderMap,
    status: StatusCode,
    user_code: String,
    message: Option<&str>,
) -> Response {
    let csrf = app.csrf(headers);
    let page = DevicePage {
        base: app.base(),
        csrf_token: csrf.token,
        user_code,
        client_name: None,
        scopes: Vec::new(),
        username: String::new(),
        message: message.map(str::to_owned),
    };
    html(status, &page, csrf.set_cookie.into_iter().collect(), None)
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
