//! Pages shared by the sign-in routes: the waiting interaction this browser started,
//! and what a browser sees when its request expired or its form went stale.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_core::authorize::{self, AuthorizationRequest};

use crate::App;
use crate::extract::cookies::BROWSER_COOKIE;

/// The request waiting under interaction `id`, if this browser started it; otherwise
/// the page to show instead. Nobody else's sign-in or consent completes an interaction.
pub(super) async fn load_bound(
    app: &App,
    headers: &HeaderMap,
    id: &str,
) -> Result<AuthorizationRequest, Response> {
    match authorize::load_interaction(app, id).await {
        Ok(Some(request))
            if authorize::belongs_to_browser(&request, app.read_cookie(headers, BROWSER_COOKIE)) =>
        {
            Ok(request)
        }
        Ok(Some(_)) => {
            tracing::warn!("interaction refused: it was started in another browser");
            Err(app.message(
                StatusCode::FORBIDDEN,
                "This sign-in request belongs to another browser",
                "Go back to the application and start signing in again from this browser.",
                None,
            ))
        }
        Ok(None) => Err(expired(app)),
        Err(error) => Err(crate::error::page(app, &error)),
    }
}

/// A sign-in request that is no longer waiting.
pub(super) fn expired(app: &App) -> Response {
    app.message(
        StatusCode::BAD_REQUEST,
        "This sign-in request has expired",
        "Go back to the application and start signing in again.",
        None,
    )
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
