//! The `DPoP` request header (RFC 9449 §4.1).

use axum::http::HeaderMap;
use tessera_core::sender::dpop::DpopProof;
use tessera_core::{ErrorCode, OAuthError};

/// The request's DPoP proof, naming `method` and `url` (the endpoint's public URL).
///
/// # Errors
/// `invalid_dpop_proof` when the header appears more than once or is not text.
pub fn dpop_proof(headers: &HeaderMap, method: &str, url: &str) -> Result<Option<DpopProof>, OAuthError> {
    let mut values = headers.get_all("dpop").iter();
    let Some(value) = values.next() else { return Ok(None) };
    // RFC 9449 §4.3 item 1: exactly one proof.
    if values.next().is_some() {
        return Err(OAuthError::new(ErrorCode::InvalidDpopProof, "more than one DPoP header"));
    }
    let jwt =
        value.to_str().map_err(|_| OAuthError::new(ErrorCode::InvalidDpopProof, "malformed DPoP header"))?;
    Ok(Some(DpopProof { jwt: jwt.trim().to_owned(), method: method.to_owned(), url: url.to_owned() }))
}
