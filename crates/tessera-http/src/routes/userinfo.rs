//! `GET|POST /userinfo` (OpenID Connect Core §5.3) with a bearer token (RFC 6750).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tessera_core::{ErrorCode, OAuthError, userinfo};

use crate::extract::{ClientTls, dpop_proof, parse_form};
use crate::{App, AppState};

pub(super) async fn userinfo_get(
    State(app): State<AppState>,
    tls: ClientTls,
    headers: HeaderMap,
) -> Response {
    answer(&app, &tls, &headers, "GET", None).await
}

pub(super) async fn userinfo_post(
    State(app): State<AppState>,
    tls: ClientTls,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // RFC 6750 §2.2: a bearer token may come in a form body instead of the header.
    let form = parse_form(&body).unwrap_or_default();
    answer(&app, &tls, &headers, "POST", form.get("access_token")).await
}

async fn answer(
    app: &App,
    tls: &ClientTls,
    headers: &HeaderMap,
    method: &str,
    form_token: Option<&str>,
) -> Response {
    let (scheme, token) = match authorization(headers) {
        Some((scheme, token)) => (scheme, Some(token)),
        None => (Scheme::Bearer, form_token),
    };
    let proof = match (scheme, dpop_proof(headers, method, &tls.endpoint(&app.settings, "/userinfo"))) {
        (Scheme::Dpop, Ok(Some(proof))) => Some(proof),
        (Scheme::Dpop, Ok(None)) => {
            return respond(scheme, Err(OAuthError::new(ErrorCode::InvalidDpopProof, "missing DPoP proof")));
        }
        (_, Err(error)) => return respond(scheme, Err(error)),
        (Scheme::Bearer, Ok(_)) => None,
    };
    let presented = token.map(|token| userinfo::Presented {
        token,
        dpop: proof.as_ref(),
        certificate: tls.certificate.as_ref(),
    });
    let mut response = respond(scheme, userinfo::userinfo(app, presented).await);
    // RFC 9449 §8, §9: the nonce to use next, on every answer while nonces are on.
    if app.settings.dpop_require_nonce
        && let Ok(nonce) = HeaderValue::from_str(&app.dpop_nonce(app.clock.now()))
    {
        response.headers_mut().insert("dpop-nonce", nonce);
    }
    response
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    /// RFC 9449 §7.1.
    Dpop,
}

/// `Authorization: Bearer …` or `DPoP …` (schemes are case-insensitive).
fn authorization(headers: &HeaderMap) -> Option<(Scheme, &str)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    if token.is_empty() {
        return None;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Some((Scheme::Bearer, token))
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Some((Scheme::Dpop, token))
    } else {
        None
    }
}

/// RFC 6750 §3 and RFC 9449 §7.1: errors in `WWW-Authenticate` under the scheme the
/// client used, 401 for a bad token or proof, 403 for scope.
fn respond(scheme: Scheme, result: Result<serde_json::Value, OAuthError>) -> Response {
    let error = match result {
        Ok(claims) => {
            let mut response = Json(claims).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return response;
        }
        Err(error) => error,
    };
    let scheme_name = if scheme == Scheme::Dpop { "DPoP" } else { "Bearer" };
    // RFC 6750 §3.1: a request with no credentials at all gets the bare challenge.
    let bare = error.code == ErrorCode::InvalidToken && error.description == userinfo::MISSING_TOKEN;
    crate::error::resource_refusal(error, scheme_name, "tessera", bare)
}
