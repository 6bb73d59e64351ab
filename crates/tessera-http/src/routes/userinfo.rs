//! `GET|POST /userinfo` (OpenID Connect Core §5.3) with a bearer token (RFC 6750).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::{ErrorCode, OAuthError, userinfo};

use crate::AppState;
use crate::extract::parse_form;

pub(super) async fn userinfo_get(State(app): State<AppState>, headers: HeaderMap) -> Response {
    respond(userinfo::userinfo(&app, bearer(&headers)).await)
}

pub(super) async fn userinfo_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // RFC 6750 §2.2: the token may come in a form body instead of the header.
    let form = parse_form(&body).unwrap_or_default();
    let token = bearer(&headers).or_else(|| form.get("access_token"));
    respond(userinfo::userinfo(&app, token).await)
}

/// `Authorization: Bearer …` (RFC 6750 §2.1; the scheme is case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

/// RFC 6750 §3: errors in `WWW-Authenticate`, 401 for a bad token, 403 for scope.
fn respond(result: Result<serde_json::Value, OAuthError>) -> Response {
    let error = match result {
        Ok(claims) => {
            let mut response = Json(claims).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return response;
        }
        Err(error) => error,
    };
    let status = match error.code {
        ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        _ => return crate::error::HttpError::from(error).into_response(),
    };
    tracing::info!(error = error.code.as_str(), description = %error.description, "userinfo refused");
    let challenge = format!(
        r#"Bearer realm="tessera", error="{}", error_description="{}""#,
        error.code.as_str(),
        error.description.replace('"', "'")
    );
    let mut response = (
        status,
        Json(serde_json::json!({ "error": error.code.as_str(), "error_description": error.description })),
    )
        .into_response();
    if let Ok(challenge) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
    }
    response
}
