//! An authorization request as kept while the user signs in and consents, or pushed
//! (RFC 9126): the document the interaction and pushed-request stores hold.

use serde::{Deserialize, Serialize};

use super::ClientId;
use crate::Timestamp;

/// How the response travels back to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// Query parameters on a 302 redirect (RFC 6749 §4.1.2).
    Query,
    /// An auto-submitting HTML form (OAuth 2.0 Form Post Response Mode).
    FormPost,
}

/// A validated authorization request, kept while the user signs in and consents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: ClientId,
    /// Where the response goes: the registered URI the request named (or the only one).
    pub redirect_uri: String,
    /// Whether `redirect_uri` was sent; then the token request must repeat it.
    pub redirect_uri_sent: bool,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
    pub scopes: Vec<String>,
    pub resources: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// RFC 9449 §10: binds the code to this DPoP key.
    pub dpop_jkt: Option<String>,
    /// Set when the user signed in during this request (answers `prompt=login`).
    #[serde(default)]
    pub authenticated_at: Option<Timestamp>,
    /// Set when the user consented during this request (answers `prompt=consent`).
    #[serde(default)]
    pub consented: bool,
    /// Hash of the browser binding cookie of the browser that started the interaction:
    /// nobody else's sign-in or consent completes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    /// Who signed in during this request: `authenticated_at` answers `prompt=login` and
    /// `max_age` only for a session of this subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticated_subject: Option<String>,
    /// The authentication levels the client asked for, in its order of preference
    /// (`acr_values`, or the `acr` claim's values in `claims`): any one will do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
}
