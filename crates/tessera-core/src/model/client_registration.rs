//! The rules every registered client keeps, wherever it comes from: the configuration
//! file, the admin API or, narrowed further, Dynamic Client Registration (RFC 7591).
//! The configuration crate maps TOML to a [`Client`] and places these errors under the
//! file's keys; a runtime registry reuses them unchanged.

use super::{AccessTokenFormat, CibaDeliveryMode, Client, GrantType};
use crate::catalog::{OFFLINE_ACCESS, Resources};
use crate::settings::RefreshExpiration;

/// Grant types OAuth 2.1 removed (§10.1): named in a registration, they are an error
/// rather than an unknown word.
pub const REMOVED_GRANT_TYPES: [&str; 2] = ["implicit", "password"];

/// A rule a registration broke: the field (as the configuration file and the admin API
/// name it) and what is wrong, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// A client to be registered, with what its registration said beyond the client.
#[derive(Debug, Clone, Copy)]
pub struct ClientRegistration<'a> {
    pub client: &'a Client,
    /// Registered as public (`require_client_secret = false`): no credentials.
    pub public: bool,
    /// `require_pkce` as given: PKCE is mandatory, so only absent or `true` pass.
    pub require_pkce: Option<bool>,
    /// How many credentials the registration listed, including any already refused
    /// while being read (so a refused one is not reported twice as missing).
    pub credentials_listed: usize,
    /// The scopes and APIs a client may name.
    pub resources: &'a Resources,
}

impl ClientRegistration<'_> {
    /// Every rule the registration breaks; empty when the client may be registered.
    #[must_use]
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut error = |field: &'static str, message: String| errors.push(FieldError { field, message });
        let client = self.client;
        let id = client.client_id.as_str();
        if id.is_empty() {
            error("client_id", "must not be empty".into());
        } else if self.resources.api_resources.iter().any(|resource| resource.name == id) {
            error(
                "client_id",
                format!("`{id}` is also an api_resources name: introspection could not tell them apart"),
            );
        }
        if self.require_pkce == Some(false) {
            error("require_pkce", "PKCE is mandatory in OAuth 2.1: remove `require_pkce = false`".into());
        }
        let grants = &client.allowed_grant_types;
        // RFC 6749 §4.4: the client credentials grant is for confidential clients only.
        if self.public && grants.contains(&GrantType::ClientCredentials) {
            error(
                "allowed_grant_types",
                "client_credentials needs a confidential client (require_client_secret = true)".into(),
            );
        }
        if self.public && self.credentials_listed > 0 {
            error("client_secrets", "a public client (require_client_secret = false) has no secrets".into());
        }
        if !self.public && self.credentials_listed == 0 {
            error(
                "client_secrets",
                "a confidential client needs at least one credential; set require_client_secret = false \
                 for a public client"
                    .into(),
            );
        }
        if grants.contains(&GrantType::AuthorizationCode) && client.redirect_uris.is_empty() {
            error("redirect_uris", "authorization_code needs at least one redirect URI".into());
        }
        for uri in &client.redirect_uris {
            if let Err(message) = redirect_uri(uri) {
                error("redirect_uris", message);
            }
        }
        for uri in &client.post_logout_redirect_uris {
            if let Err(message) = redirect_uri(uri) {
                error("post_logout_redirect_uris", message);
            }
        }
        for scope in &client.allowed_scopes {
            if !scope_defined(self.resources, scope) {
                error(
                    "allowed_scopes",
                    format!("`{scope}` is not defined in [[api_scopes]] or [[identity_resources]]"),
                );
            }
        }
        if client.refresh_token_expiration == RefreshExpiration::Sliding
            && client.sliding_refresh_token_lifetime <= 0
        {
            error("sliding_refresh_token_lifetime", "must be longer than zero".into());
        }
        // CIBA Core §5: ping mode needs the endpoint the notification is sent to.
        if client.ciba_delivery_mode == CibaDeliveryMode::Ping
            && client.backchannel_client_notification_endpoint.is_none()
        {
            error(
                "backchannel_client_notification_endpoint",
                "required when ciba_delivery_mode = \"ping\"".into(),
            );
        }
        if let Some(policy) = &client.token_exchange {
            for audience in &policy.audiences {
                if !self.resources.api_resources.iter().any(|resource| &resource.name == audience) {
                    error(
                        "token_exchange.audiences",
                        format!("`{audience}` is not defined in [[api_resources]]"),
                    );
                }
            }
        }
        if client.require_dpop && client.access_token_format == Some(AccessTokenFormat::Reference) {
            // DPoP binding lives in the JWT's `cnf`; reference tokens would go out unbound.
            error("require_dpop", "needs JWT access tokens, not access_token_format = \"reference\"".into());
        }
        if !client.refresh_token_rotation {
            // FAPI 2.0 §5.3.2.1 allows reuse only where the client proves who it is; a
            // public client's stolen refresh token is caught by rotation alone (RFC 9700
            // §4.14.2).
            if self.public {
                error(
                    "refresh_token_rotation",
                    "only confidential clients may turn rotation off: remove `refresh_token_rotation = false`"
                        .into(),
                );
            }
            if client.refresh_token_expiration == RefreshExpiration::Sliding {
                error(
                    "refresh_token_rotation",
                    "a sliding refresh_token_expiration slides with each rotation: it needs rotation on"
                        .into(),
                );
            }
        }
        errors
    }
}

/// Whether `scope` is `offline_access` or defined by an identity resource or API scope.
#[must_use]
pub fn scope_defined(resources: &Resources, scope: &str) -> bool {
    scope == OFFLINE_ACCESS
        || resources.identity_resources.iter().any(|resource| resource.name == scope)
        || resources.api_scopes.iter().any(|api_scope| api_scope.name == scope)
}

/// A redirect URI any registered client may have: absolute, without a fragment (RFC 6749
/// §3.1.2), not a scheme that runs script or reads files (RFC 9700 §4.1), no spaces.
///
/// # Errors
/// What is wrong with it.
pub fn redirect_uri(uri: &str) -> Result<(), String> {
    match url::Url::parse(uri) {
        Err(_) => Err(format!("{uri:?} is not an absolute URI")),
        Ok(url) if url.fragment().is_some() => {
            Err(format!("{uri:?} has a fragment, which RFC 6749 §3.1.2 forbids"))
        }
        Ok(url) if matches!(url.scheme(), "javascript" | "data" | "vbscript" | "file" | "blob" | "about") => {
            Err(format!("{uri:?}: scheme `{}` is not a redirect", url.scheme()))
        }
        Ok(_) if uri.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            Err(format!("{uri:?} has spaces or control characters"))
        }
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::{ClientRegistration, FieldError};
    use crate::model::{AuthMethod, CibaDeliveryMode, Client, GrantType, TokenExchangePolicy};
    use crate::settings::RefreshExpiration;
    use crate::test_support::{catalog, service_client};

    fn web() -> Client {
        Client {
            allowed_grant_types: vec![GrantType::AuthorizationCode],
            redirect_uris: vec!["https://app.example/cb".into()],
            allowed_scopes: vec!["openid".into(), "api1.read".into()],
            ..service_client("web", &[])
        }
    }

    fn fields(client: &Client, public: bool) -> Vec<&'static str> {
        let resources = catalog().resources().clone();
        let registration = ClientRegistration {
            client,
            public,
            require_pkce: None,
            credentials_listed: client.credentials.len(),
            resources: &resources,
        };
        registration.validate().into_iter().map(|FieldError { field, .. }| field).collect()
    }

    #[test]
    fn a_confidential_web_client_within_the_catalog_passes() {
        assert!(fields(&web(), false).is_empty());
    }

    #[test]
    fn a_public_client_may_not_use_client_credentials_hold_secrets_or_keep_its_refresh_token() {
        let client = Client {
            allowed_grant_types: vec![GrantType::AuthorizationCode, GrantType::ClientCredentials],
            auth_methods: vec![AuthMethod::None],
            refresh_token_rotation: false,
            ..web()
        };
        assert_eq!(
            fields(&client, true),
            ["allowed_grant_types", "client_secrets", "refresh_token_rotation"]
        );
    }

    #[test]
    fn a_confidential_client_needs_a_credential_and_a_code_client_a_redirect_uri() {
        let client = Client { credentials: vec![], redirect_uris: vec![], ..web() };
        assert_eq!(fields(&client, false), ["client_secrets", "redirect_uris"]);
    }

    #[test]
    fn redirect_uris_that_run_script_have_fragments_or_are_relative_are_refused() {
        for uri in [
            "javascript:alert(1)//",
            "https://app.example/cb#x",
            "/cb",
            "data:text/html,x",
            "https://a.example/c b",
        ] {
            let client = Client { redirect_uris: vec![uri.into()], ..web() };
            assert_eq!(fields(&client, false), ["redirect_uris"], "{uri}");
        }
        let client = Client { post_logout_redirect_uris: vec!["file:///etc/passwd".into()], ..web() };
        assert_eq!(fields(&client, false), ["post_logout_redirect_uris"]);
    }

    #[test]
    fn scopes_audiences_and_the_client_id_must_fit_the_catalog() {
        let client = Client {
            client_id: crate::model::ClientId("api1".into()),
            allowed_scopes: vec!["api9.read".into()],
            token_exchange: Some(TokenExchangePolicy {
                audiences: vec!["api9".into()],
                delegation: true,
                impersonation: false,
            }),
            ..web()
        };
        assert_eq!(fields(&client, false), ["client_id", "allowed_scopes", "token_exchange.audiences"]);
    }

    #[test]
    fn ping_needs_an_endpoint_sliding_needs_rotation_and_a_lifetime_and_dpop_needs_jwts() {
        let client = Client {
            ciba_delivery_mode: CibaDeliveryMode::Ping,
            refresh_token_expiration: RefreshExpiration::Sliding,
            sliding_refresh_token_lifetime: 0,
            refresh_token_rotation: false,
            require_dpop: true,
            access_token_format: Some(crate::model::AccessTokenFormat::Reference),
            ..web()
        };
        assert_eq!(
            fields(&client, false),
            [
                "sliding_refresh_token_lifetime",
                "backchannel_client_notification_endpoint",
                "require_dpop",
                "refresh_token_rotation"
            ]
        );
    }

    #[test]
    fn require_pkce_false_is_refused() {
        let resources = catalog().resources().clone();
        let client = web();
        let registration = ClientRegistration {
            client: &client,
            public: false,
            require_pkce: Some(false),
            credentials_listed: 1,
            resources: &resources,
        };
        assert_eq!(registration.validate()[0].field, "require_pkce");
    }
}
