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
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // RFC 9110 §10.2.3: when to try again (a limit's window, else a store outage's pace).
            let retry_after =
                error.retry_after.and_then(|seconds| HeaderValue::from_str(&seconds.to_string()).ok());
            headers.insert(
                header::RETRY_AFTER,
                retry_after.unwrap_or(HeaderValue::from_static(RETRY_AFTER_SECONDS)),
            );
        }
        // RFC 6750 §3: a refused Bearer token says so in the challenge.
        if error.code == ErrorCode::InvalidToken {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            );
        }
        if status == StatusCode::UNAUTHORIZED && error.code == ErrorCode::InvalidClient {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="tessera""#));
        }
        response
    }
}

/// A protected resource's refusal of a token (RFC 6750 §3, RFC 9449 §7.1): 401 for a
/// bad or missing token or proof, 403 for scope, with the challenge under the scheme
/// the caller used (`Bearer` or `DPoP`) and `realm`. A request that sent no token at
/// all (`bare`) gets the challenge without an error code (RFC 6750 §3.1). Any other
/// error is the RFC 6749 body.
#[must_use]
pub fn resource_refusal(error: OAuthError, scheme: &str, realm: &str, bare: bool) -> Response {
    let status = match error.code {
        ErrorCode::InvalidToken | ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce => {
            StatusCode::UNAUTHORIZED
        }
        ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        _ => return HttpError::from(error).into_response(),
    };
    info!(error = error.code.as_str(), description = %error.description, realm, "token refused");
    let challenge = if bare {
        format!(r#"{scheme} realm="{realm}""#)
    } else {
        format!(
            r#"{scheme} realm="{realm}", error="{}", error_description="{}""#,
            error.code.as_str(),
            error.description.replace('"', "'")
        )
    };
    let body = json!({ "error": error.code.as_str(), "error_description": error.description });
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A page that cannot go on (RFC 6749 §4.1.2.1: without a trusted client and redirect
/// URI the user is told, and nothing redirects): 503 with `Retry-After` when the store
/// is unreachable, 500 for other server failures, else 400, with the error's code and
/// description as the page's detail.
#[must_use]
pub fn page(app: &crate::App, error: &OAuthError) -> Response {
    let status = page_status(error.code);
    if status.is_server_error() {
        error!(error = error.code.as_str(), description = %error.description, cause = ?error.source, "page failed");
    } else {
        info!(error = error.code.as_str(), description = %error.description, cause = ?error.source, "request refused");
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // The store is unreachable for now: nothing is wrong with the request.
        let mut page =
            app.message(status, "Tessera is temporarily unavailable", "Please try again in a moment.", None);
        unavailable_headers(&mut page);
        return page;
    }
    app.message(
        status,
        "This sign-in request cannot be completed",
        "The application sent a request Tessera cannot accept. Go back to the application and try again.",
        Some(format!("{}: {}", error.code.as_str(), error.description)),
    )
}

/// An admin API failure: the caller's token as a protected resource answers it (RFC
/// 6750 §3: 401 with the challenge, 403 for scope), a missing target 404, a client or
/// user the configuration file owns (or a taken name) 409, a bad body 400 with each
/// field's problem.
#[must_use]
pub fn admin_response(error: tessera_core::admin::AdminError) -> Response {
    use tessera_core::admin::AdminError;
    let (status, code, description, fields) = match error {
        AdminError::OAuth(error) => return resource_refusal(error, "Bearer", "tessera-admin", false),
        AdminError::NotFound(description) => (StatusCode::NOT_FOUND, "not_found", description, Vec::new()),
        AdminError::Conflict(description) => (StatusCode::CONFLICT, "conflict", description, Vec::new()),
        AdminError::Invalid(fields) => {
            (StatusCode::BAD_REQUEST, "invalid_request", "the body is not acceptable".to_owned(), fields)
        }
    };
    info!(error = code, %description, "admin request refused");
    let fields: Vec<_> =
        fields.into_iter().map(|(field, message)| json!({ "field": field, "message": message })).collect();
    let mut body = json!({ "error": code, "error_description": description });
    if !fields.is_empty() {
        body["fields"] = json!(fields);
    }
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `Retry-After` on every 503: the store's acquire timeout is about 2 s, and an
/// outage that outlasts it is retried at this pace.
pub const RETRY_AFTER_SECONDS: &str = "2";

/// How long a request may take before it is answered `temporarily_unavailable`.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The request timeout: past [`REQUEST_TIMEOUT`] the handler is dropped and the
/// client gets the same 503 JSON body (with `Retry-After`) as any unavailable store.
pub async fn within_request_timeout(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            HttpError::from(OAuthError::temporarily_unavailable("the request timed out")).into_response()
        }
    }
}

/// The status a page shows for an error that stops it: 503 (with `Retry-After`, see
/// [`unavailable_headers`]) when the store is unreachable, 500 for other server
/// failures, else 400.
#[must_use]
pub fn page_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Adds `Retry-After` to a page answered 503.
pub fn unavailable_headers(response: &mut Response) {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
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

    #[tokio::test]
    async fn an_unavailable_store_is_a_503_with_retry_after_and_the_rfc_6749_body() {
        let error = OAuthError::from(tessera_core::store::StoreError::unavailable("connection refused"));
        let response = HttpError::from(error).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], RETRY_AFTER_SECONDS);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "temporarily_unavailable");
    }

    /// A handler that outlives the request timeout is dropped, and the client gets
    /// the 503 JSON body with `Retry-After`, not hyper's empty one.
    #[tokio::test(start_paused = true)]
    async fn a_request_past_the_timeout_is_a_503_with_the_rfc_6749_body() {
        use tower::ServiceExt as _;
        let app = axum::Router::new()
            .route(
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(REQUEST_TIMEOUT * 2).await;
                    "too late"
                }),
            )
            .route("/quick", axum::routing::get(|| async { "in time" }))
            .layer(axum::middleware::from_fn(within_request_timeout));
        let request =
            |path: &str| axum::extract::Request::builder().uri(path).body(axum::body::Body::empty());
        let quick = app.clone().oneshot(request("/quick").unwrap()).await.unwrap();
        assert_eq!(quick.status(), StatusCode::OK);
        let started = tokio::time::Instant::now();
        let response = app.oneshot(request("/slow").unwrap()).await.unwrap();
        assert_eq!(started.elapsed(), REQUEST_TIMEOUT, "answered at the timeout, not when the handler ends");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], RETRY_AFTER_SECONDS);
        let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "temporarily_unavailable");
    }
}
