//! Grant types by their wire names.

use serde::{Deserialize, Serialize};

/// A `grant_type` Tessera knows. OAuth 2.1 removed `password` and `implicit`;
/// they are refused with `unsupported_grant_type` and cannot be configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum GrantType {
    ClientCredentials,
    AuthorizationCode,
    RefreshToken,
    DeviceCode,
    Ciba,
    TokenExchange,
}

impl GrantType {
    /// Every grant type, for listing and parsing.
    pub const ALL: [Self; 6] = [
        Self::ClientCredentials,
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::DeviceCode,
        Self::Ciba,
        Self::TokenExchange,
    ];

    /// The wire value of `grant_type`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            Self::Ciba => "urn:openid:params:grant-type:ciba",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
        }
    }

    /// Parses a wire value; `None` for anything unknown or removed.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|grant| grant.as_str() == value)
    }
}

impl TryFrom<String> for GrantType {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or_else(|| format!("unknown grant type `{value}`"))
    }
}

impl From<GrantType> for String {
    fn from(value: GrantType) -> Self {
        value.as_str().to_owned()
    }
}

impl std::fmt::Display for GrantType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
