//! A grant: what one user's consent to one client, or one client's own request,
//! started. Every code, refresh token and access token issued from it carries its id,
//! so revoking the grant revokes them all (RFC 7009 §2.1, RFC 9700 §4.14.2).

use serde::{Deserialize, Serialize};

/// A grant's id: random, minted when the grant starts, never shown to users.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GrantId(pub String);

impl GrantId {
    /// The id as stored and as carried in a `jti`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for GrantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for GrantId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for GrantId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}
