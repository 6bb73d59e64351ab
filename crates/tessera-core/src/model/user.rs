//! Local user accounts.

use serde::{Deserialize, Serialize};

/// A local account. The password is kept only as an argon2id PHC string.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The stable `sub`.
    pub subject: String,
    pub username: String,
    pub password_hash: String,
    /// Claims released through identity scopes (`name`, `email`, ...).
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("subject", &self.subject)
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .finish_non_exhaustive()
    }
}
