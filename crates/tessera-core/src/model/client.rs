//! OAuth clients as registered.

use serde::{Deserialize, Serialize};

use super::GrantType;
use crate::Timestamp;
use crate::secret::SecretHash;

/// A `client_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub String);

impl ClientId {
    /// The identifier as sent on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for ClientId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for ClientId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl PartialEq<str> for ClientId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ClientId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A token endpoint authentication method (RFC 8414 §2, RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    TlsClientAuth,
    SelfSignedTlsClientAuth,
    None,
}

impl AuthMethod {
    /// Every method, for listing and parsing.
    pub const ALL: [Self; 6] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::TlsClientAuth,
        Self::SelfSignedTlsClientAuth,
        Self::None,
    ];

    /// The registered name of the method.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::TlsClientAuth => "tls_client_auth",
            Self::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
            Self::None => "none",
        }
    }

    /// Parses a registered name.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|method| method.as_str() == value)
    }
}

/// One credential a client may authenticate with (the `client_secrets` entries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClientCredential {
    /// A shared secret the operator gave pre-hashed (`sha256`), kept as that SHA-256.
    SharedSecret { sha256: SecretHash, expires: Option<Timestamp> },
    /// A shared secret given as `value`, kept only as its salted argon2id PHC string.
    SaltedSecret { argon2id: String, expires: Option<Timestamp> },
    /// A public key for `private_key_jwt` (RFC 7523), as a JWK.
    Jwk { jwk: serde_json::Value, expires: Option<Timestamp> },
    /// A JWKS URL for `private_key_jwt`, fetched and cached.
    JwksUri { jwks_uri: String, expires: Option<Timestamp> },
    /// The subject DN for `tls_client_auth` (RFC 8705 §2.1).
    X509Subject { subject: String, expires: Option<Timestamp> },
    /// A certificate's base64url SHA-256 for `self_signed_tls_client_auth` (RFC 8705 §2.2).
    X509Thumbprint { thumbprint: String, expires: Option<Timestamp> },
}

impl ClientCredential {
    /// When the credential stops being accepted, if ever.
    #[must_use]
    pub fn expires(&self) -> Option<Timestamp> {
        match self {
            Self::SharedSecret { expires, .. }
            | Self::SaltedSecret { expires, .. }
            | Self::Jwk { expires, .. }
            | Self::JwksUri { expires, .. }
            | Self::X509Subject { expires, .. }
            | Self::X509Thumbprint { expires, .. } => *expires,
        }
    }

    /// Whether the credential is still valid at `now`.
    #[must_use]
    pub fn is_current(&self, now: Timestamp) -> bool {
        self.expires().is_none_or(|expires| now < expires)
    }

    /// The authentication methods this credential serves.
    #[must_use]
    pub fn methods(&self) -> &'static [AuthMethod] {
        match self {
            Self::SharedSecret { .. } | Self::SaltedSecret { .. } => {
                &[AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost]
            }
            Self::Jwk { .. } | Self::JwksUri { .. } => &[AuthMethod::PrivateKeyJwt],
            Self::X509Subject { .. } => &[AuthMethod::TlsClientAuth],
            Self::X509Thumbprint { .. } => &[AuthMethod::SelfSignedTlsClientAuth],
        }
    }
}

/// How a client's access tokens are issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessTokenFormat {
    /// A signed JWT (RFC 9068) any API can verify offline.
    #[default]
    Jwt,
    /// An opaque handle, stored hashed and resolved by introspection.
    Reference,
}

/// A registered client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    pub client_id: ClientId,
    pub client_name: String,
    pub allowed_grant_types: Vec<GrantType>,
    /// Credentials; empty for a public client.
    pub credentials: Vec<ClientCredential>,
    /// The methods this client may authenticate with (never empty).
    pub auth_methods: Vec<AuthMethod>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub allowed_scopes: Vec<String>,
    pub allow_offline_access: bool,
    pub require_consent: bool,
    pub require_dpop: bool,
    pub require_pushed_authorization: bool,
    /// Seconds; `None` takes the server default.
    pub access_token_lifetime: Option<i64>,
    pub access_token_format: Option<AccessTokenFormat>,
    #[serde(default)]
    pub refresh_token_expiration: crate::settings::RefreshExpiration,
    /// Seconds a sliding refresh token lives unused.
    #[serde(default)]
    pub sliding_refresh_token_lifetime: i64,
    /// What the client may do with token exchange (RFC 8693), if anything.
    #[serde(default)]
    pub token_exchange: Option<TokenExchangePolicy>,
    /// How CIBA results reach the client (CIBA Core §5).
    #[serde(default)]
    pub ciba_delivery_mode: CibaDeliveryMode,
    /// Where ping notifications go (CIBA Core §10.2).
    #[serde(default)]
    pub backchannel_client_notification_endpoint: Option<String>,
    /// Browser origins (`https://app.example`) that may call the token, userinfo,
    /// revocation and device authorization endpoints (IdentityServer's name).
    #[serde(default)]
    pub allowed_cors_origins: Vec<String>,
    /// Whether each refresh returns a new refresh token and retires the old one
    /// (RFC 9700 §4.14.2); only confidential clients may turn it off (FAPI 2.0 §5.3.2.1).
    #[serde(default = "rotate_by_default")]
    pub refresh_token_rotation: bool,
    /// The key that signs this client's ID tokens (OpenID Connect Registration §2);
    /// `None` is the server's first `[signing] algorithms` entry.
    #[serde(default)]
    pub id_token_signed_response_alg: Option<crate::tokens::SigningAlgorithm>,
    /// The key that signs this client's JWT access tokens; `None` as above.
    #[serde(default)]
    pub access_token_signing_alg: Option<crate::tokens::SigningAlgorithm>,
    /// For a client that registered itself (RFC 7591): its registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<crate::registration::metadata::Registration>,
    /// A client whose `client_id` is the URL of its metadata document (never stored).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_metadata_document: bool,
    /// Every user signing in to this client needs a second factor (one without is taken
    /// to set one up).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_mfa: bool,
}

fn rotate_by_default() -> bool {
    true
}

/// CIBA token delivery modes Tessera supports (CIBA Core §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CibaDeliveryMode {
    /// The client polls the token endpoint.
    #[default]
    Poll,
    /// The server tells the client's notification endpoint when to fetch the tokens.
    Ping,
}

/// A client's token exchange policy (RFC 8693).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenExchangePolicy {
    /// The API resources the client may exchange tokens for.
    pub audiences: Vec<String>,
    /// May act on a user's behalf: the new token names the actor in `act` (§4.1).
    pub delegation: bool,
    /// May become the user: the new token has no `act` (§1.1).
    pub impersonation: bool,
}

impl Client {
    /// A public client authenticates with no secret (auth method `none`).
    #[must_use]
    pub fn is_public(&self) -> bool {
        self.auth_methods == [AuthMethod::None]
    }

    /// Whether the client may use `grant`.
    #[must_use]
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        if grant == GrantType::RefreshToken {
            return self.allow_offline_access;
        }
        self.allowed_grant_types.contains(&grant)
    }

    /// Whether the client may authenticate with `method`.
    #[must_use]
    pub fn allows_auth_method(&self, method: AuthMethod) -> bool {
        self.auth_methods.contains(&method)
    }
}
