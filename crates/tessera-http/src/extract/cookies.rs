//! Cookies: reading the `Cookie` header and writing `Set-Cookie` (RFC 6265).

use axum::http::{HeaderMap, HeaderValue, header};

/// The browser session.
pub const SESSION_COOKIE: &str = "tessera_session";
/// The CSRF double-submit secret.
pub const CSRF_COOKIE: &str = "tessera_csrf";
/// A random value per browser; interactions keep its hash, so they belong to the
/// browser that started them.
pub const BROWSER_COOKIE: &str = "tessera_browser";
/// Names a sign-in between its password and its second factor (or a step-up).
pub const SECOND_STEP_COOKIE: &str = "tessera_second_step";
/// The prefix browsers enforce as `Secure`, `Path=/`, no `Domain` (RFC 6265bis §4.1.3.2):
/// a sibling subdomain or a plain-http page cannot plant or overwrite such a cookie.
pub const HOST_PREFIX: &str = "__Host-";

/// The value of cookie `name`.
#[must_use]
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value: HTTP-only, `SameSite=Lax` (sent on the top-level redirect
/// back from a client), `Secure` on HTTPS, scoped to the issuer's path.
#[must_use]
pub fn set_cookie(name: &str, value: &str, path: &str, secure: bool, max_age: Option<i64>) -> HeaderValue {
    let path = if path.is_empty() { "/" } else { path };
    let mut cookie = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax");
    if secure {
        cookie.push_str("; Secure");
    }
    if let Some(max_age) = max_age {
        cookie.push_str(&format!("; Max-Age={max_age}"));
    }
    // The values are base64url: always a valid header value.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cookie_among_several() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; tessera_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn session_cookies_are_http_only_and_lax() {
        let value = set_cookie(SESSION_COOKIE, "v", "", true, Some(60));
        assert_eq!(value, "tessera_session=v; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=60");
    }
}
