//! The one place an [`OAuthError`] becomes an HTTP response (RFC 6749 §5.2).

use std::any::Any;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_core::{ErrorCode, OAuthError};
use tracing::{error, info};

/// An OAuth error on its way out, with what decides its status and headers.
#[derive(Debug)]
pub struct HttpError {
    pub error: OAuthError,
    /// The client authenticated (or tried to) with the `Authorization` header.
    pub used_authorization_header: bool,
    /// A fresh DPoP nonce to send along (RFC 9449 §8).
    pub dpop_nonce: Option<String>,
}

impl From<OAuthError> for HttpError {
    fn from(error: OAuthError) -> Self {
        Self { error, used_authorization_header: false, dpop_nonce: None }
    }
}

impl HttpError {
    /// An error that follows credentials sent in the `Authorization` header.
    #[must_use]
    pub fn after_header_auth(error: OAuthError, used_authorization_header: bool) -> Self {
        Self { error, used_authorization_header, dpop_nonce: None }
    }

    /// Adds the `DPoP-Nonce` header the client must use next.
    #[must_use]
    pub fn with_dpop_nonce(mut self, nonce: Option<String>) -> Self {
        self.dpop_nonce = nonce;
        self
    }
}

fn status_of(code: ErrorCode, used_authorization_header: bool) -> StatusCode {
    match code {
        // RFC 6749 §5.2: 401 when the client authenticated through the Authorization header.
        ErrorCode::InvalidClient if used_authorization_header => StatusCode::UNAUTHORIZED,
        ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let HttpError { error, used_authorization_header, dpop_nonce } = self;
        let status = status_of(error.code, used_authorization_header);
        if status.is_server_error() {
            error!(error = error.code.as_str(), description = %error.description, cause = ?error.source, "request failed");
        } else {
            info!(error = error.code.as_str(), description = %error.description, cause = ?error.source, "request refused");
        }
        let body = json!({ "error": error.code.as_str(), "error_description": error.description });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(nonce) = dpop_nonce.and_then(|nonce| HeaderValue::from_str(&nonce).ok()) {
            headers.insert("dpop-nonce", nonce);
        }
        if status == StatusCode::UNAUTHORIZED && error.code == ErrorCode::InvalidClient {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="tessera""#));
        }
        response
    }
}

/// A panic in a handler: a plain `server_error`, never the panic message.
#[must_use]
pub fn panic_response(_panic: Box<dyn Any + Send + 'static>) -> Response {
    HttpError::from(OAuthError::server_error("handler panicked")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_rfc_6749_section_5_2() {
        assert_eq!(status_of(ErrorCode::InvalidClient, true), StatusCode::UNAUTHORIZED);
        assert_eq!(status_of(ErrorCode::InvalidClient, false), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(ErrorCode::InvalidGrant, true), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(ErrorCode::ServerError, false), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
