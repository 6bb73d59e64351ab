//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3). The request carries exactly one [`Credentials`]; the client is
//! loaded and checked by the method it is *registered* with, never a fallback.

mod client_secret_basic;
mod client_secret_post;
mod jwks;
mod none;
mod private_key_jwt;
mod registry;
mod shared_secret;

use std::sync::Arc;

use tracing::info;

pub use jwks::{JwksCache, JwksSource};
pub use private_key_jwt::allowed_algorithm_names as allowed_assertion_algorithms;
pub use registry::ClientRegistry;

use crate::OAuthError;
use crate::model::{AuthMethod, Client, ClientId};
use crate::provider::Provider;
use crate::secret::Secret;

/// RFC 7523 §2.2: the only `client_assertion_type` Tessera accepts.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What the request presented to prove the client's identity.
#[derive(Debug)]
pub enum Credentials {
    /// `Authorization: Basic` (RFC 6749 §2.3.1), already form-decoded.
    Basic { client_id: String, secret: Secret },
    /// `client_id` and `client_secret` in the body (RFC 6749 §2.3.1).
    Post { client_id: String, secret: Secret },
    /// `client_assertion_type` and `client_assertion` (RFC 7521 §4.2).
    Assertion { assertion_type: String, assertion: Secret, client_id: Option<String> },
    /// `client_id` alone: a public client (RFC 6749 §2.1).
    ClientIdOnly { client_id: String },
    /// Nothing at all.
    Absent,
}

impl Credentials {
    /// Whether the credentials came in the `Authorization` header, which makes a
    /// failure a `401` with `WWW-Authenticate` (RFC 6749 §5.2).
    #[must_use]
    pub fn used_authorization_header(&self) -> bool {
        matches!(self, Self::Basic { .. })
    }
}

/// A client whose credentials checked out, and how it proved itself.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub client: Arc<Client>,
    pub method: AuthMethod,
}

/// The endpoint a client authenticates at: client assertions must name it or the issuer.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    pub url: &'a str,
}

/// Authenticates the client behind `credentials`.
///
/// # Errors
/// `invalid_client` for an unknown client, a wrong or expired credential, or a method
/// the client is not registered for; `invalid_request` when none were presented or
/// the assertion type is unsupported.
pub async fn authenticate(
    provider: &Provider,
    credentials: &Credentials,
    endpoint: Endpoint<'_>,
) -> Result<AuthenticatedClient, OAuthError> {
    let (method, client_id) = match credentials {
        Credentials::Basic { client_id, .. } => (AuthMethod::ClientSecretBasic, client_id.clone()),
        Credentials::Post { client_id, .. } => (AuthMethod::ClientSecretPost, client_id.clone()),
        Credentials::ClientIdOnly { client_id } => (AuthMethod::None, client_id.clone()),
        Credentials::Assertion { assertion_type, assertion, client_id } => {
            if assertion_type != JWT_BEARER_ASSERTION {
                return Err(OAuthError::invalid_request("unsupported client_assertion_type"));
            }
            let client_id = private_key_jwt::claimed_client_id(assertion, client_id.as_deref())?;
            (AuthMethod::PrivateKeyJwt, client_id)
        }
        Credentials::Absent => return Err(OAuthError::invalid_client("client authentication required")),
    };
    let client_id = ClientId(client_id);
    let Some(client) = provider.clients.get(&client_id, provider.clock.now()).await? else {
        info!(client_id = %client_id, "client authentication failed: unknown client");
        return Err(OAuthError::invalid_client("client authentication failed"));
    };
    if !client.allows_auth_method(method) {
        info!(client_id = %client_id, method = method.as_str(), "client authentication failed: method not registered");
        return Err(OAuthError::invalid_client("client authentication failed"));
    }
    let outcome = match credentials {
        Credentials::Basic { secret, .. } => client_secret_basic::verify(provider, &client, secret),
        Credentials::Post { secret, .. } => client_secret_post::verify(provider, &client, secret),
        Credentials::ClientIdOnly { .. } => none::verify(&client),
        Credentials::Assertion { assertion, .. } => {
            private_key_jwt::verify(provider, &client, assertion, endpoint).await
        }
        Credentials::Absent => Err("no credentials".into()),
    };
    match outcome {
        Ok(()) => Ok(AuthenticatedClient { client, method }),
        Err(reason) => {
            info!(client_id = %client_id, method = method.as_str(), %reason, "client authentication failed");
            Err(OAuthError::invalid_client("client authentication failed"))
        }
    }
}

/// Why a credential was refused: logged, never sent (the client sees `invalid_client`).
pub(crate) type Refusal = std::borrow::Cow<'static, str>;
