//! Routes, one module per endpoint, mirroring the core's endpoints.

mod account;
mod admin;
mod authorize;
mod ciba;
mod consent;
mod device;
mod discovery;
mod health;
mod interaction_pages;
mod introspect;
mod jwks;
mod login;
mod logout;
mod par;
mod passkeys;
mod register;
mod revoke;
mod second_factor;
mod token;
mod userinfo;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::AppState;

/// Every route, relative to the issuer's path.
pub(crate) fn all() -> Router<AppState> {
    Router::new()
        .route("/token", post(token::token))
        .route("/introspect", post(introspect::introspect))
        .route("/revoke", post(revoke::revoke))
        .route("/jwks", get(jwks::jwks))
        .route("/.well-known/openid-configuration", get(discovery::openid_configuration))
        .route("/.well-known/oauth-authorization-server", get(discovery::authorization_server))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/authorize", get(authorize::authorize_get).post(authorize::authorize_post))
        .route("/authorize/resume", get(authorize::resume))
        .route("/login", get(login::login_page).post(login::login_submit))
        .route(
            "/login/second-factor",
            get(second_factor::second_factor_page).post(second_factor::second_factor_submit),
        )
        .route("/login/set-up", get(second_factor::set_up_page).post(second_factor::set_up_submit))
        .route("/account", get(account::account_page))
        .route("/account/password", post(account::change_password))
        .route("/account/totp", get(account::totp_page).post(account::confirm_totp))
        .route("/account/totp/remove", post(account::remove_totp))
        .route("/account/recovery-codes", post(account::recovery_codes))
        .route("/account/passkeys/remove", post(account::remove_passkey))
        .route("/account/sessions/end", post(account::end_session))
        .route("/account/verify", get(account::verify_page).post(account::verify_submit))
        .route("/consent", get(consent::consent_page).post(consent::consent_submit))
        .route("/logout", get(logout::logout_page).post(logout::logout_submit))
        .route("/userinfo", get(userinfo::userinfo_get).post(userinfo::userinfo_post))
        .route("/par", post(par::par))
        .route("/register", post(register::register))
        .route("/register/{client_id}", get(register::read).put(register::replace).delete(register::delete))
        .route("/device_authorization", post(device::device_authorization))
        .route("/device", get(device::device_page).post(device::device_submit))
        .route("/device/decision", post(device::device_decision))
        .route("/bc-authorize", post(ciba::backchannel_authentication))
        .route("/approvals", get(ciba::approvals_page).post(ciba::approvals_submit))
        .route("/passkeys/register/options", post(passkeys::register_options))
        .route("/passkeys/register", post(passkeys::register))
        .route("/passkeys/sign-in/options", post(passkeys::sign_in_options))
        .route("/passkeys/sign-in", post(passkeys::sign_in))
        .route("/passkeys/second-factor/options", post(passkeys::second_factor_options))
        .route("/passkeys/second-factor", post(passkeys::second_factor))
        .route("/assets/tessera.css", get(stylesheet))
        .route("/assets/passkeys.js", get(passkeys_script))
}

/// Marks a request that came in on the administration API's own listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdminListener;

/// The administration API (see [`admin`]).
pub(crate) fn admin_routes() -> Router<AppState> {
    Router::new()
        .route("/admin/openapi.json", get(admin::openapi))
        .route("/admin/clients", get(admin::list_clients).post(admin::create_client))
        .route(
            "/admin/clients/{client_id}",
            get(admin::read_client).put(admin::replace_client).delete(admin::delete_client),
        )
        .route("/admin/clients/{client_id}/secret", post(admin::rotate_secret))
        .route("/admin/users", get(admin::list_users).post(admin::create_user))
        .route("/admin/users/{username}", axum::routing::delete(admin::delete_user))
        .route("/admin/users/{username}/password", axum::routing::put(admin::set_password))
        .route("/admin/users/{username}/disable", post(admin::disable_user))
        .route("/admin/users/{username}/enable", post(admin::enable_user))
}

/// RFC 8414 §3.1 path insertion, for an issuer with a path: the metadata at
/// `/.well-known/oauth-authorization-server{path}`, and the same for OpenID
/// configuration (what MCP clients also try); `{issuer}/.well-known/…` stays as well.
pub(crate) fn path_inserted_metadata(issuer_path: &str) -> Router<AppState> {
    Router::new()
        .route(
            &format!("/.well-known/oauth-authorization-server{issuer_path}"),
            get(discovery::authorization_server),
        )
        .route(
            &format!("/.well-known/openid-configuration{issuer_path}"),
            get(discovery::openid_configuration),
        )
}

/// The pages' one stylesheet.
async fn stylesheet() -> Response {
    let mut response = include_str!("../../assets/tessera.css").into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    response
}

/// The passkey buttons' script.
async fn passkeys_script() -> Response {
    let mut response = crate::assets::PASSKEYS_JS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    response
}

/// Authenticates the calling client (RFC 6749 §2.3) at the endpoint at `path`; a
/// failure after Basic credentials is a 401.
pub(crate) async fn authenticated_client(
    app: &crate::App,
    headers: &axum::http::HeaderMap,
    params: &tessera_core::request::Params,
    tls: &crate::extract::ClientTls,
    path: &str,
) -> Result<tessera_core::client_auth::AuthenticatedClient, crate::error::HttpError> {
    let credentials = crate::extract::credentials(headers, params, tls.certificate.as_ref())?;
    let endpoint = tls.endpoint(&app.settings, path);
    let endpoint = tessera_core::client_auth::Endpoint { url: &endpoint };
    let client =
        tessera_core::client_auth::authenticate(app, &credentials, endpoint).await.map_err(|error| {
            crate::error::HttpError::after_header_auth(error, credentials.used_authorization_header())
        })?;
    tracing::Span::current().record("client_id", client.client.client_id.as_str());
    Ok(client)
}

/// What every state-changing page form checks first: its CSRF token, then that a
/// user is signed in. Otherwise the response to send instead (a refusal, or a
/// redirect to `sign_in_at`).
pub(crate) async fn signed_in_form(
    app: &crate::App,
    headers: &axum::http::HeaderMap,
    form: &tessera_core::request::Params,
    sign_in_at: &str,
) -> Result<tessera_core::store::Session, Response> {
    if !app.csrf_valid(headers, form.get("csrf_token")) {
        return Err(interaction_pages::stale_form(app));
    }
    let cookie = app.read_cookie(headers, crate::extract::cookies::SESSION_COOKIE);
    match tessera_core::sign_in::session(app, cookie).await {
        Ok(Some(session)) => Ok(session),
        _ => Err(crate::pages::see_other(sign_in_at, Vec::new())),
    }
}

/// An approval (device or CIBA) the core refused until the sign-in is stronger: the
/// step-up, returning to `return_to` to approve again; or, when no factor of the user's
/// reaches what the client asks, a page saying so. `None` for any other refusal.
pub(crate) async fn approval_step_up(
    app: &crate::App,
    headers: &axum::http::HeaderMap,
    session: &tessera_core::store::Session,
    error: &tessera_core::OAuthError,
    return_to: &str,
) -> Option<Response> {
    use tessera_core::ErrorCode;
    match error.code {
        ErrorCode::InteractionRequired => {
            let cookie = app.read_cookie(headers, crate::extract::cookies::SESSION_COOKIE)?;
            let enrol = !tessera_core::mfa::factors(app, &session.subject).await.ok()?.any();
            let step_cookie =
                second_factor::open_step_up(app, cookie, session, None, Some(return_to.to_owned()), enrol)
                    .await
                    .ok()?;
            let page = if enrol { "/login/set-up" } else { "/login/second-factor" };
            Some(crate::pages::see_other(&app.link(page), vec![step_cookie]))
        }
        ErrorCode::UnmetAuthenticationRequirements => Some(app.message(
            axum::http::StatusCode::FORBIDDEN,
            "A stronger sign-in is needed",
            "This request asks for a kind of sign-in your account cannot give, such as a passkey. \
             Add one on your account page, then try again.",
            None,
        )),
        _ => None,
    }
}

/// A JSON body that must not be cached (RFC 6749 §5.1, RFC 7662 §2.2).
pub(crate) fn no_store_json(body: String) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
