//! API scopes, API resources and identity resources.

use serde::{Deserialize, Serialize};

use crate::secret::StoredSecret;

/// A scope that grants access to an API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiScope {
    pub name: String,
    pub display_name: String,
}

/// An API: the `aud` of tokens carrying its scopes (RFC 9068 §3, RFC 8707).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiResource {
    pub name: String,
    pub display_name: String,
    pub scopes: Vec<String>,
    /// Secrets the API authenticates with at the introspection endpoint.
    pub secrets: Vec<StoredSecret>,
}

/// A set of user claims requested by an OpenID Connect scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityResource {
    pub name: String,
    pub display_name: String,
    pub user_claims: Vec<String>,
}
