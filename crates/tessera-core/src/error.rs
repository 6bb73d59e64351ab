//! The one list of OAuth error codes Tessera sends, and the error type that carries them.

use std::borrow::Cow;

/// Every OAuth error code Tessera can send. RFC 6749 §5.2 unless noted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    /// RFC 7009 §2.2.1.
    UnsupportedTokenType,
    /// RFC 8707 §2.
    InvalidTarget,
    /// RFC 6750 §3.1.
    InvalidToken,
    ServerError,
    /// RFC 6749 §4.1.2.1: the service is overloaded or down for maintenance.
    TemporarilyUnavailable,
    /// RFC 6749 §4.1.2.1.
    UnsupportedResponseType,
    /// RFC 6749 §4.1.2.1: the user or the server refused.
    AccessDenied,
    /// OpenID Connect Core §3.1.2.6 (`prompt=none`).
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    /// RFC 9101 §6.2 / RFC 9126 §4: unknown, used or expired `request_uri`.
    InvalidRequestUri,
    /// RFC 9101 §6.2: Request Objects are not supported.
    RequestNotSupported,
    /// RFC 6750 §3.1.
    InsufficientScope,
    /// RFC 8628 §3.5 (reused by CIBA): the user has not decided yet.
    AuthorizationPending,
    /// RFC 8628 §3.5: poll more slowly.
    SlowDown,
    /// RFC 8628 §3.5: the device code (or `auth_req_id`) expired.
    ExpiredToken,
    /// CIBA Core §13: `login_hint` names no user.
    UnknownUserId,
    /// CIBA Core §13: the binding message is too long or has control characters.
    InvalidBindingMessage,
    /// RFC 9449 §5: the DPoP proof is missing, malformed, replayed or does not match.
    InvalidDpopProof,
    /// RFC 9449 §8: send the proof again with the server's nonce.
    UseDpopNonce,
    /// RFC 7591 §3.2.2: a redirect URI the server does not accept.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2: other client metadata the server does not accept.
    InvalidClientMetadata,
    /// OpenID Connect Unmet Authentication Requirements 1.0: no requested `acr` can be met.
    UnmetAuthenticationRequirements,
}

impl ErrorCode {
    /// The wire value of the `error` parameter.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidToken => "invalid_token",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::AccessDenied => "access_denied",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::InvalidRequestUri => "invalid_request_uri",
            Self::RequestNotSupported => "request_not_supported",
            Self::InsufficientScope => "insufficient_scope",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::UnknownUserId => "unknown_user_id",
            Self::InvalidBindingMessage => "invalid_binding_message",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
        }
    }
}

/// An OAuth error: the code sent to the client, a description for client developers
/// (never a secret), and an internal cause that is logged but never sent.
#[derive(Debug, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    /// The `error` value.
    pub code: ErrorCode,
    /// The `error_description` value: safe to show to the client.
    pub description: Cow<'static, str>,
    /// Logged, never sent.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// For `temporarily_unavailable`: when to try again, in seconds (RFC 9110 §10.2.3),
    /// when it is known to be longer than a store outage's few seconds.
    pub retry_after: Option<i64>,
}

macro_rules! constructors {
    ($($name:ident => $code:ident),* $(,)?) => {
        impl OAuthError {
            $(
                #[doc = concat!("An `", stringify!($name), "` error with the given description.")]
                pub fn $name(description: impl Into<Cow<'static, str>>) -> Self {
                    Self::new(ErrorCode::$code, description)
                }
            )*
        }
    };
}

constructors! {
    invalid_request => InvalidRequest,
    invalid_client => InvalidClient,
    invalid_grant => InvalidGrant,
    unauthorized_client => UnauthorizedClient,
    unsupported_grant_type => UnsupportedGrantType,
    invalid_scope => InvalidScope,
    unsupported_token_type => UnsupportedTokenType,
    invalid_target => InvalidTarget,
    invalid_token => InvalidToken,
    unsupported_response_type => UnsupportedResponseType,
    access_denied => AccessDenied,
    login_required => LoginRequired,
    consent_required => ConsentRequired,
    invalid_request_uri => InvalidRequestUri,
    request_not_supported => RequestNotSupported,
    insufficient_scope => InsufficientScope,
    authorization_pending => AuthorizationPending,
    slow_down => SlowDown,
    expired_token => ExpiredToken,
    unknown_user_id => UnknownUserId,
    invalid_binding_message => InvalidBindingMessage,
}

impl OAuthError {
    /// An error with the given code and description.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self { code, description: description.into(), source: None, retry_after: None }
    }

    /// The same error, saying the client should not try again for `seconds`.
    #[must_use]
    pub fn retry_after(mut self, seconds: i64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// A `server_error` whose cause is logged and not sent.
    pub fn server_error(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            code: ErrorCode::ServerError,
            description: Cow::Borrowed("the server could not complete the request"),
            source: Some(source.into()),
            retry_after: None,
        }
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(error: crate::store::StoreError) -> Self {
        if error.is_unavailable() {
            return Self::temporarily_unavailable(error);
        }
        Self::server_error(error)
    }
}

impl OAuthError {
    /// RFC 6749 §4.1.2.1 `temporarily_unavailable`: the store cannot be reached now; the
    /// client should retry shortly. The cause is logged, not sent.
    pub fn temporarily_unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            code: ErrorCode::TemporarilyUnavailable,
            description: Cow::Borrowed("the service is temporarily unavailable; try again shortly"),
            source: Some(source.into()),
            retry_after: None,
        }
    }
}

impl From<crate::tokens::KeyError> for OAuthError {
    fn from(error: crate::tokens::KeyError) -> Self {
        Self::server_error(error)
    }
}
