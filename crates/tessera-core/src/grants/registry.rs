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

#[cfg(test)]
mod tests {
    use super::GrantRegistry;
    use crate::model::GrantType;

    #[test]
    fn each_supported_grant_type_has_exactly_its_own_handler() {
        let registry = GrantRegistry::standard(b"instances' shared secret");
        let supported = registry.supported();
        assert_eq!(supported.len(), 6);
        for grant in &supported {
            assert_eq!(supported.iter().filter(|other| *other == grant).count(), 1, "{grant:?} twice");
            let handler = registry.handler(grant.as_str()).unwrap();
            assert_eq!(handler.grant_type(), *grant);
        }
        assert!(supported.contains(&GrantType::DeviceCode) && supported.contains(&GrantType::Ciba));
    }

    #[test]
    fn removed_and_unknown_grant_types_have_no_handler() {
        let registry = GrantRegistry::standard(b"instances' shared secret");
        // OAuth 2.1 §10: the password and implicit grants are gone.
        for grant_type in ["password", "implicit", "token", "", "AUTHORIZATION_CODE", "authorization_code "] {
            assert!(registry.handler(grant_type).is_none(), "{grant_type:?}");
        }
    }
}
