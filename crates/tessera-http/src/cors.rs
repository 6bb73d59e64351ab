//! Cross-origin requests (the Fetch standard's CORS protocol) for browser-based
//! clients: a SPA's code exchange, a JavaScript RP reading discovery. Only the
//! endpoints such clients call answer; pages never do, so no other origin can read
//! them.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::info;

use crate::AppState;

/// Who may read an endpoint's answers from another origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// Public documents (discovery, JWKS): any origin.
    Public,
    /// Token, userinfo, revocation, device authorization: the clients' origins only.
    ClientOrigins { methods: &'static str },
    /// Client registration (RFC 7591, RFC 7592): any origin. It reads no cookies, and
    /// browser-based clients (an MCP inspector) register themselves.
    AnyOrigin { methods: &'static str },
    /// Everything else, pages above all: no CORS at all.
    Closed,
}

/// The policy for the request path `path` under an issuer whose path is `base_path`.
fn policy(base_path: &str, path: &str) -> Policy {
    // RFC 8414 §3.1: the path-inserted metadata URL sits outside the issuer's path.
    if !base_path.is_empty()
        && path.strip_suffix(base_path).is_some_and(|well_known| {
            matches!(
                well_known,
                "/.well-known/oauth-authorization-server" | "/.well-known/openid-configuration"
            )
        })
    {
        return Policy::Public;
    }
    match path.strip_prefix(base_path) {
        Some("/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server" | "/jwks") => {
            Policy::Public
        }
        Some("/token" | "/revoke" | "/device_authorization") => Policy::ClientOrigins { methods: "POST" },
        Some("/userinfo") => Policy::ClientOrigins { methods: "GET, POST" },
        Some("/register") => Policy::AnyOrigin { methods: "POST" },
        Some(path) if path.starts_with("/register/") => Policy::AnyOrigin { methods: "GET, PUT, DELETE" },
        _ => Policy::Closed,
    }
}

/// Answers preflights and adds `Access-Control-Allow-Origin` where the policy allows.
pub(crate) async fn cors(State(app): State<AppState>, request: Request, next: Next) -> Response {
    // Requests without `Origin` (servers, native apps) pass untouched.
    let Some(origin) = request.headers().get(header::ORIGIN).cloned() else {
        return next.run(request).await;
    };
    let policy = policy(&app.base_path, request.uri().path());
    if policy == Policy::Closed {
        return next.run(request).await;
    }
    let allowed = match policy {
        Policy::Public | Policy::AnyOrigin { .. } => Some(HeaderValue::from_static("*")),
        Policy::ClientOrigins { .. } => origin
            .to_str()
            .ok()
            .filter(|origin| app.settings.cors_allows(origin) || unlisted_client_may_be_at(&app, origin))
            .map(|_| origin.clone()),
        Policy::Closed => None,
    };
    let preflight = request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        return preflight_response(policy, allowed, request.headers());
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if policy != Policy::Public {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(allowed) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        // RFC 9449 §8, RFC 6750 §3: a browser client must read these to retry or react.
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("DPoP-Nonce, WWW-Authenticate"),
        );
    }
    response
}

/// Clients nobody listed (self-registered, or named by a metadata document) that run in a
/// browser on the user's own machine, as an MCP inspector on `http://localhost:6274`
/// does: with registration or metadata documents on, a loopback origin may call the
/// token, revocation, userinfo and device endpoints. They read no cookies, and a
/// loopback page is the user's own software; any other origin needs a listing.
fn unlisted_client_may_be_at(app: &AppState, origin: &str) -> bool {
    let open = app.settings.registration.enabled || app.settings.metadata_documents.enabled;
    open && is_loopback_origin(origin)
}

/// `http://localhost[:port]`, `http://127.0.0.1[:port]` or `http://[::1][:port]`.
fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("http://") else { return false };
    let host = match rest.strip_prefix("[::1]") {
        Some(port) => return port.is_empty() || port.strip_prefix(':').is_some_and(is_port),
        None => rest,
    };
    let (name, port) = host.split_once(':').map_or((host, None), |(name, port)| (name, Some(port)));
    matches!(name, "localhost" | "127.0.0.1") && port.is_none_or(is_port)
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// A preflight's answer (Fetch standard §4.8): methods, the requested headers (the
/// endpoints read no cookies, so any header is harmless) and how long to remember it.
fn preflight_response(policy: Policy, allowed: Option<HeaderValue>, request: &HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
    );
    let Some(allowed) = allowed else {
        info!("CORS preflight refused: origin not in any client's allowed_cors_origins");
        *response.status_mut() = StatusCode::FORBIDDEN;
        return response;
    };
    let methods = match policy {
        Policy::ClientOrigins { methods } | Policy::AnyOrigin { methods } => methods,
        Policy::Public | Policy::Closed => "GET",
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
    if let Some(requested) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins_are_recognised_exactly() {
        for origin in ["http://localhost:6274", "http://127.0.0.1", "http://[::1]:8080", "http://localhost"] {
            assert!(is_loopback_origin(origin), "{origin}");
        }
        for origin in [
            "https://localhost:6274",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example:80",
            "http://localhost:6274/path",
            "http://[::1]evil",
            "http://127.0.0.2:80",
            "http://localhost:",
            "null",
        ] {
            assert!(!is_loopback_origin(origin), "{origin}");
        }
    }

    #[test]
    fn pages_are_never_cross_origin() {
        for path in ["/login", "/consent", "/device", "/authorize", "/logout", "/approvals", "/introspect"] {
            assert_eq!(policy("", path), Policy::Closed, "{path}");
        }
    }

    #[test]
    fn path_inserted_metadata_is_public_under_an_issuer_path() {
        assert_eq!(policy("/tenant", "/.well-known/oauth-authorization-server/tenant"), Policy::Public);
        assert_eq!(policy("/tenant", "/tenant/.well-known/openid-configuration"), Policy::Public);
        assert_eq!(policy("/tenant", "/tenant/token"), Policy::ClientOrigins { methods: "POST" });
        assert_eq!(policy("/tenant", "/token"), Policy::Closed);
        assert_eq!(policy("", "/jwks"), Policy::Public);
    }
}
