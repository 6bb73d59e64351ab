//! The grant types this server runs, each by its own module.

use super::GrantHandler;
use super::authorization_code::AuthorizationCode;
use super::ciba::Ciba;
use super::client_credentials::ClientCredentials;
use super::device_code::DeviceCode;
use super::refresh_token::RefreshToken;
use super::token_exchange::TokenExchange;
use crate::model::GrantType;

/// The grant handlers this server runs.
pub struct GrantRegistry {
    handlers: Vec<Box<dyn GrantHandler>>,
}

impl GrantRegistry {
    /// Every implemented grant. `refresh_successor_secret` is the instances' shared
    /// secret from which a refresh token's successor is derived (see [`RefreshToken`]).
    #[must_use]
    pub fn standard(refresh_successor_secret: &[u8]) -> Self {
        Self {
            handlers: vec![
                Box::new(ClientCredentials),
                Box::new(AuthorizationCode::default()),
                Box::new(RefreshToken::new(refresh_successor_secret)),
                Box::new(TokenExchange),
                Box::new(DeviceCode::default()),
                Box::new(Ciba::default()),
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
