//! Validated server settings, as `tessera-config` produces them. Durations are seconds.

use crate::model::AccessTokenFormat;
use crate::secret::Secret;
use crate::tokens::SigningAlgorithm;

/// Everything the protocol core needs to know about this deployment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The exact `iss` of every token, without a trailing slash.
    pub issuer: String,
    pub tokens: TokenSettings,
    pub signing: SigningSettings,
    pub client_authentication: ClientAuthSettings,
    /// How long a cached client stays fresh before it is read again from the store.
    pub client_cache_ttl: i64,
    /// How long a browser session lasts after sign-in.
    pub session_lifetime: i64,
    /// Where new CIBA requests are announced, for an operator's phone app.
    pub ciba_notification_webhook: Option<String>,
    /// Whether DPoP proofs must carry a server nonce (RFC 9449 §8).
    pub dpop_require_nonce: bool,
    /// Mutual TLS (RFC 8705), when a TLS listener or a trusted proxy passes client
    /// certificates in.
    pub mtls: MtlsSettings,
    /// Browser origins allowed to call the token, userinfo, revocation and device
    /// authorization endpoints: every client's `allowed_cors_origins` and the origins
    /// of public clients' web redirect URIs. Sorted, each as a browser sends `Origin`.
    pub cors_origins: Vec<String>,
    /// Dynamic Client Registration (RFC 7591), off by default.
    pub registration: RegistrationSettings,
    /// Client ID metadata documents (URL `client_id`s), off by default.
    pub metadata_documents: MetadataDocumentSettings,
    /// `[sign_in] require_mfa`: every user needs a second factor.
    pub require_mfa: bool,
    /// The WebAuthn relying party id (`[passkeys] rp_id`, default the issuer's host);
    /// `None` when passkeys are off (an IP-literal issuer).
    pub passkey_rp_id: Option<String>,
}

/// What discovery says about mutual TLS (RFC 8705 §3.3, §5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MtlsSettings {
    /// Whether client certificates can reach the server at all.
    pub enabled: bool,
    /// The base URL of the TLS listener when it differs from the issuer's, so that
    /// clients find the endpoints where certificates are asked for (RFC 8705 §5).
    pub endpoint_base: Option<String>,
}

/// Token lifetimes and format.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub access_token_lifetime: i64,
    /// The longest access-token lifetime of any client (per-client overrides
    /// included): how long a revoked grant must be remembered, since its access
    /// tokens are judged by their grant when read.
    pub longest_access_token_lifetime: i64,
    pub id_token_lifetime: i64,
    pub authorization_code_lifetime: i64,
    pub refresh_token_lifetime: i64,
    pub access_token_format: AccessTokenFormat,
}

/// How a client's refresh tokens expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshExpiration {
    /// At `refresh_token_lifetime` after the first issue, however often refreshed.
    #[default]
    Absolute,
    /// Each token lapses after the sliding lifetime unused, within the absolute limit.
    Sliding,
}

/// Signing algorithm and the key rotation schedule.
#[derive(Debug, Clone)]
pub struct SigningSettings {
    /// The default algorithm: the first of `algorithms`.
    pub algorithm: SigningAlgorithm,
    /// Every algorithm with a key of its own, the default first; RS256 always among
    /// them (OpenID Connect Discovery §3).
    pub algorithms: Vec<SigningAlgorithm>,
    /// How long a key signs before the next one takes over.
    pub rotation: i64,
    /// How long a key is published before it signs.
    pub announce: i64,
    /// How long a key stays published after it stops signing.
    pub retain: i64,
    /// Encrypts private keys at rest when set.
    pub encryption_key: Option<Secret>,
    /// How long an instance trusts its cached key set before reading the store again.
    pub cache_ttl: i64,
}

/// Limits for client-made JWTs (RFC 7523 client assertions).
#[derive(Debug, Clone)]
pub struct ClientAuthSettings {
    /// Allowed clock difference for `exp`, `nbf` and `iat`.
    pub clock_skew: i64,
    /// The furthest in the future an assertion's `exp` may be.
    pub assertion_max_lifetime: i64,
}

impl Settings {
    /// Settings with the defaults of `../shared/spec/config.md`, for tests and examples.
    #[must_use]
    pub fn with_issuer(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            tokens: TokenSettings {
                access_token_lifetime: 3600,
                longest_access_token_lifetime: 3600,
                id_token_lifetime: 300,
                authorization_code_lifetime: 60,
                refresh_token_lifetime: 30 * 86_400,
                access_token_format: AccessTokenFormat::Jwt,
            },
            signing: SigningSettings {
                algorithm: SigningAlgorithm::Es256,
                algorithms: vec![SigningAlgorithm::Es256, SigningAlgorithm::Rs256],
                rotation: 90 * 86_400,
                announce: 14 * 86_400,
                retain: 14 * 86_400,
                encryption_key: None,
                cache_ttl: 60,
            },
            // One hour: what Authlib and other popular clients sign (exp = iat + 3600).
            client_authentication: ClientAuthSettings { clock_skew: 60, assertion_max_lifetime: 3600 },
            client_cache_ttl: 30,
            session_lifetime: 8 * 3600,
            ciba_notification_webhook: None,
            dpop_require_nonce: false,
            mtls: MtlsSettings::default(),
            cors_origins: Vec::new(),
            registration: RegistrationSettings::default(),
            metadata_documents: MetadataDocumentSettings::default(),
            require_mfa: false,
            passkey_rp_id: None,
        }
    }

    /// Whether a browser at `origin` may read the answers of the token, userinfo,
    /// revocation and device authorization endpoints.
    #[must_use]
    pub fn cors_allows(&self, origin: &str) -> bool {
        self.cors_origins.binary_search_by(|allowed| allowed.as_str().cmp(origin)).is_ok()
    }

    /// The URL of an endpoint at `path` (which starts with `/`).
    #[must_use]
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The URL of an endpoint as reached through the TLS listener's alias, if there
    /// is one (RFC 8705 §5), else as [`Self::endpoint`].
    #[must_use]
    pub fn mtls_endpoint(&self, path: &str) -> String {
        match &self.mtls.endpoint_base {
            Some(base) => format!("{base}{path}"),
            None => self.endpoint(path),
        }
    }
}

/// `[registration]`: whether clients may register themselves, and on what terms.
#[derive(Debug, Clone)]
pub struct RegistrationSettings {
    pub enabled: bool,
    /// When set, registering needs it as a Bearer token (RFC 7591 §3).
    pub initial_access_token: Option<Secret>,
    /// The scopes a registered client may ask for; also its scopes when it names none.
    pub allowed_scopes: Vec<String>,
    /// Seconds a registered client may go unused before it is removed.
    pub unused_client_lifetime: i64,
}

impl Default for RegistrationSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            initial_access_token: None,
            allowed_scopes: Vec::new(),
            unused_client_lifetime: 30 * 86_400,
        }
    }
}

/// `[client_id_metadata_documents]`.
#[derive(Debug, Clone, Default)]
pub struct MetadataDocumentSettings {
    pub enabled: bool,
    /// Development only: `http` URLs on loopback hosts are accepted and fetched there.
    pub allow_http_loopback: bool,
    /// The scopes such clients may ask for; their scopes when the document names none.
    pub allowed_scopes: Vec<String>,
}
