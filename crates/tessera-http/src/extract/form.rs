//! `application/x-www-form-urlencoded` bodies (RFC 6749 §3.2): repeated parameters are
//! refused, empty ones are absent (§3.1), except `resource`, which may repeat (RFC 8707 §2).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use tessera_core::OAuthError;
use tessera_core::request::Params;

use crate::error::HttpError;

/// The parsed form, plus the raw body's parameters the credential extractor reads.
#[derive(Debug)]
pub struct OAuthForm(pub Params);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = axum::response::Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let is_form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if !is_form {
            let error = OAuthError::invalid_request("the body must be application/x-www-form-urlencoded");
            return Err(HttpError::from(error).into_response());
        }
        // Bytes honours DefaultBodyLimit: an oversized body is refused with 413.
        let body = Bytes::from_request(request, state).await.map_err(IntoResponse::into_response)?;
        parse(&body).map(OAuthForm).map_err(|error| HttpError::from(error).into_response())
    }
}

/// Parses a form body into [`Params`].
///
/// # Errors
/// `invalid_request` when a parameter other than `resource` repeats.
pub fn parse(body: &[u8]) -> Result<Params, OAuthError> {
    let mut values = HashMap::new();
    let mut resources = Vec::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if value.is_empty() {
            continue;
        }
        if name == "resource" {
            resources.push(value.into_owned());
            continue;
        }
        match values.entry(name.into_owned()) {
            Entry::Occupied(entry) => {
                return Err(OAuthError::invalid_request(format!("parameter `{}` repeated", entry.key())));
            }
            Entry::Vacant(entry) => {
                entry.insert(value.into_owned());
            }
        }
    }
    Ok(Params::new(values, resources))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_but_resource_may_repeat() {
        assert!(parse(b"scope=a&scope=b").is_err());
        let params = parse(b"resource=a&resource=b&scope=x+y").unwrap();
        assert_eq!(params.resources(), ["a", "b"]);
        assert_eq!(params.get("scope"), Some("x y"));
    }

    #[test]
    fn empty_parameters_are_absent() {
        let params = parse(b"scope=&grant_type=client_credentials").unwrap();
        assert_eq!(params.get("scope"), None);
    }
}
