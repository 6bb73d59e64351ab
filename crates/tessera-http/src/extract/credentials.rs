//! Client credentials from the `Authorization` header or the body (RFC 6749 §2.3).

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tessera_core::OAuthError;
use tessera_core::client_auth::Credentials;
use tessera_core::model::ClientCertificate;
use tessera_core::request::Params;
use tessera_core::secret::Secret;

use crate::error::HttpError;

/// The one set of credentials the request presents.
///
/// # Errors
/// `invalid_request` when more than one method is used (RFC 6749 §2.3); `invalid_client`
/// for a malformed Basic header (a 401, since it came in the `Authorization` header).
pub fn credentials(
    headers: &HeaderMap,
    params: &Params,
    certificate: Option<&ClientCertificate>,
) -> Result<Credentials, HttpError> {
    read_credentials(headers, params, certificate)
        .map_err(|error| HttpError::after_header_auth(error, headers.contains_key(header::AUTHORIZATION)))
}

fn read_credentials(
    headers: &HeaderMap,
    params: &Params,
    certificate: Option<&ClientCertificate>,
) -> Result<Credentials, OAuthError> {
    let basic = basic(headers)?;
    let (client_id, secret) = (params.get("client_id"), params.get("client_secret"));
    let assertion = params.get("client_assertion");
    let used =
        usize::from(basic.is_some()) + usize::from(secret.is_some()) + usize::from(assertion.is_some());
    if used > 1 {
        return Err(OAuthError::invalid_request("more than one client authentication method used"));
    }
    if let Some((header_id, header_secret)) = basic {
        if client_id.is_some_and(|id| id != header_id) {
            return Err(OAuthError::invalid_request("client_id differs from the Authorization header"));
        }
        return Ok(Credentials::Basic { client_id: header_id, secret: Secret::new(header_secret) });
    }
    if let Some(assertion) = assertion {
        return Ok(Credentials::Assertion {
            assertion_type: params.get("client_assertion_type").unwrap_or_default().to_owned(),
            assertion: Secret::new(assertion),
            client_id: client_id.map(str::to_owned),
        });
    }
    Ok(match (client_id, secret) {
        (Some(client_id), Some(secret)) => {
            Credentials::Post { client_id: client_id.to_owned(), secret: Secret::new(secret) }
        }
        (None, Some(_)) => return Err(OAuthError::invalid_request("client_secret without client_id")),
        // RFC 8705 §2: `client_id` and a certificate, the mutual-TLS methods.
        (Some(client_id), None) => match certificate {
            Some(certificate) => {
                Credentials::Certificate { client_id: client_id.to_owned(), certificate: certificate.clone() }
            }
            None => Credentials::ClientIdOnly { client_id: client_id.to_owned() },
        },
        (None, None) => Credentials::Absent,
    })
}

/// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn basic(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let malformed = || OAuthError::invalid_client("malformed Basic credentials");
    let value = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = value.split_once(' ') else { return Err(malformed()) };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client("only Basic authentication is accepted here"));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let form_decode = |text: &str| -> String {
        url::form_urlencoded::parse(format!("x={text}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (form_decode(id), form_decode(secret));
    if id.is_empty() {
        return Err(malformed());
    }
    Ok(Some((id, secret)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::form::parse;

    fn with_basic(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        // "a%2Bb:s%3Ac+d" -> id "a+b", secret "s:c d"
        let encoded = STANDARD.encode("a%2Bb:s%3Ac+d");
        let credentials =
            read_credentials(&with_basic(&format!("Basic {encoded}")), &parse(b"").unwrap(), None).unwrap();
        let Credentials::Basic { client_id, secret } = credentials else { panic!("not basic") };
        assert_eq!((client_id.as_str(), secret.expose()), ("a+b", "s:c d"));
    }

    #[test]
    fn two_methods_at_once_are_invalid_request() {
        let encoded = STANDARD.encode("a:b");
        let params = parse(b"client_id=a&client_secret=b").unwrap();
        let error = read_credentials(&with_basic(&format!("Basic {encoded}")), &params, None).unwrap_err();
        assert_eq!(error.code, tessera_core::ErrorCode::InvalidRequest);
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        for value in ["Basic !!!", "Basic", "Bearer abc"] {
            let error = read_credentials(&with_basic(value), &parse(b"").unwrap(), None).unwrap_err();
            assert_eq!(error.code, tessera_core::ErrorCode::InvalidClient, "{value}");
        }
    }
}
