//! Grant types: one module each, behind one trait. The token endpoint does what they
//! share (authenticate, check the grant is allowed, mint); a grant decides what to issue.

mod authorization_code;
mod client_credentials;
mod refresh_token;
mod token_exchange;

use async_trait::async_trait;

pub use authorization_code::AuthorizationCode;
pub use client_credentials::ClientCredentials;
pub use refresh_token::RefreshToken;
pub use token_exchange::TokenExchange;

use crate::model::{Client, GrantType};
use crate::provider::Provider;
use crate::request::Params;
use crate::{OAuthError, Timestamp};

/// What a grant handler is handed.
pub struct GrantContext<'a> {
    pub provider: &'a Provider,
    /// The authenticated client.
    pub client: &'a Client,
    pub now: Timestamp,
}

/// What to issue: the token endpoint mints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// `sub`: the user, or the client itself for client credentials (RFC 9068 §2.2).
    pub subject: String,
    /// The access token's scopes.
    pub scopes: Vec<String>,
    pub audience: Vec<String>,
    /// Present when a user granted the access.
    pub user: Option<UserGrant>,
    /// The `act` claim of a delegated token (RFC 8693 §4.1).
    pub act: Option<serde_json::Value>,
    /// `issued_token_type` of the response (RFC 8693 §2.2.1), for token exchange.
    pub issued_token_type: Option<&'static str>,
}

/// A grant by a signed-in user: what ties its tokens together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGrant {
    /// Every token of the grant is recorded under it, so reuse can revoke them all.
    pub grant_id: String,
    pub auth_time: Timestamp,
    pub sid: String,
    pub nonce: Option<String>,
    pub refresh: RefreshPlan,
}

/// What happens to refresh tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshPlan {
    /// None issued.
    None,
    /// The first of a grant: the token endpoint stores this record under a new value.
    Start(crate::store::RefreshRecord),
    /// Rotated by the grant itself: hand out this new value.
    Rotated(crate::secret::Secret),
}

/// One grant type.
#[async_trait]
pub trait GrantHandler: Send + Sync {
    /// The `grant_type` it handles.
    fn grant_type(&self) -> GrantType;
    /// Checks the grant's own parameters and decides what to issue.
    async fn handle(&self, cx: &GrantContext<'_>, params: &Params) -> Result<Issue, OAuthError>;
}

/// The grant handlers this server runs.
pub struct GrantRegistry {
    handlers: Vec<Box<dyn GrantHandler>>,
}

impl GrantRegistry {
    /// Every implemented grant.
    #[must_use]
    pub fn standard() -> Self {
        Self {
            handlers: vec![
                Box::new(ClientCredentials),
                Box::new(AuthorizationCode),
                Box::new(RefreshToken),
                Box::new(TokenExchange),
            ],
        }
    }

    /// The handler for a `grant_type` value.
    #[must_use]
    pub fn handler(&self, grant_type: &str) -> Option<&dyn GrantHandler> {
        let grant = GrantType::parse(grant_type)?;
        self.handlers.iter().find(|h| h.grant_type() == grant).map(AsRef::as_ref)
    }

    /// The grant types for discovery's `grant_types_supported`.
    #[must_use]
    pub fn supported(&self) -> Vec<GrantType> {
        self.handlers.iter().map(|h| h.grant_type()).collect()
    }
}
