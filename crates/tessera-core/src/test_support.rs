//! Builders for tests (feature `test-util`).

use crate::catalog::{Catalog, Resources};
use crate::model::{
    ApiResource, ApiScope, AuthMethod, Client, ClientCredential, ClientId, GrantType, IdentityResource,
};
use crate::secret::SecretHash;

/// A confidential client-credentials client with secret `secret`.
#[must_use]
pub fn service_client(client_id: &str, scopes: &[&str]) -> Client {
    Client {
        client_id: ClientId(client_id.into()),
        client_name: client_id.into(),
        allowed_grant_types: vec![GrantType::ClientCredentials],
        credentials: vec![ClientCredential::SharedSecret { sha256: SecretHash::of("secret"), expires: None }],
        auth_methods: vec![AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost],
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        allowed_scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        allow_offline_access: false,
        require_consent: false,
        require_dpop: false,
        require_pushed_authorization: false,
        access_token_lifetime: None,
        access_token_format: None,
        refresh_token_expiration: crate::settings::RefreshExpiration::Absolute,
        sliding_refresh_token_lifetime: 0,
        token_exchange: None,
        ciba_delivery_mode: crate::model::CibaDeliveryMode::Poll,
        backchannel_client_notification_endpoint: None,
        allowed_cors_origins: vec![],
        refresh_token_rotation: true,
        id_token_signed_response_alg: None,
        access_token_signing_alg: None,
        registration: None,
        from_metadata_document: false,
        require_mfa: false,
    }
}

/// Two APIs (`api1`, `api2`) with read/write scopes, and `openid`.
#[must_use]
pub fn catalog() -> Catalog {
    let scope = |name: &str| ApiScope { name: name.into(), display_name: name.into() };
    let api = |name: &str| ApiResource {
        name: name.into(),
        display_name: name.into(),
        scopes: vec![format!("{name}.read"), format!("{name}.write")],
        secrets: vec![crate::secret::StoredSecret::Sha256(SecretHash::of(&format!("{name}-secret")))],
    };
    Catalog::new(Resources {
        api_scopes: ["api1.read", "api1.write", "api2.read", "api2.write"].map(scope).to_vec(),
        api_resources: vec![api("api1"), api("api2")],
        identity_resources: vec![IdentityResource {
            name: "openid".into(),
            display_name: "Your user identifier".into(),
            user_claims: vec!["sub".into()],
        }],
    })
}
