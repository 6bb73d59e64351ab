//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3). The request carries exactly one [`Credentials`]; the client is
//! loaded and checked by the method it is *registered* with, never a fallback.

mod client_secret_basic;
mod client_secret_post;
mod jwks;
mod none;
mod private_key_jwt;
mod registry;
mod self_signed_tls_client_auth;
mod shared_secret;
mod tls_client_auth;

use std::sync::Arc;

use tracing::info;

pub use jwks::{JwksCache, JwksSource};
pub use private_key_jwt::allowed_algorithm_names as allowed_assertion_algorithms;
pub use registry::ClientRegistry;

use crate::OAuthError;
use crate::model::{AuthMethod, Client, ClientCertificate, ClientId};
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
    /// `client_id` and a TLS client certificate (RFC 8705 §2): `tls_client_auth` or
    /// `self_signed_tls_client_auth`, whichever the client registered, or a public
    /// client that happens to hold a certificate (RFC 8705 §4).
    Certificate { client_id: String, certificate: ClientCertificate },
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
        Credentials::Certificate { client_id, .. } => (AuthMethod::TlsClientAuth, client_id.clone()),
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
    let now = provider.clock.now();
    let Some(client) = provider.clients.get(&client_id, now).await? else {
        info!(client_id = %client_id, "client authentication failed: unknown client");
        return Err(OAuthError::invalid_client("client authentication failed"));
    };
    let (method, outcome) = match credentials {
        Credentials::Certificate { certificate, .. } => by_certificate(&client, certificate, now),
        _ if !client.allows_auth_method(method) => (method, Err("method not registered".into())),
        // A full queue of slow secret checks is 503 `temporarily_unavailable`, not a
        // wrong secret: the client's secret may well be right.
        Credentials::Basic { secret, .. } => {
            (method, client_secret_basic::verify(provider, &client, secret).await?)
        }
        Credentials::Post { secret, .. } => {
            (method, client_secret_post::verify(provider, &client, secret).await?)
        }
        Credentials::ClientIdOnly { .. } => (method, none::verify(&client)),
        Credentials::Assertion { assertion, .. } => {
            (method, private_key_jwt::verify(provider, &client, assertion, endpoint).await)
        }
        Credentials::Absent => (method, Err("no credentials".into())),
    };
    match outcome {
        Ok(()) => Ok(AuthenticatedClient { client, method }),
        Err(reason) => {
            info!(client_id = %client_id, method = method.as_str(), %reason, "client authentication failed");
            Err(OAuthError::invalid_client("client authentication failed"))
        }
    }
}

/// RFC 8705 §2: a certificate authenticates by whichever mTLS method the client
/// registered; a public client may hold one only to bind its tokens (§4).
fn by_certificate(
    client: &Client,
    certificate: &ClientCertificate,
    now: crate::Timestamp,
) -> (AuthMethod, Result<(), Refusal>) {
    let mut refusal: Option<(AuthMethod, Refusal)> = None;
    for method in [AuthMethod::TlsClientAuth, AuthMethod::SelfSignedTlsClientAuth] {
        if !client.allows_auth_method(method) {
            continue;
        }
        let outcome = match method {
            AuthMethod::TlsClientAuth => tls_client_auth::verify(client, certificate, now),
            _ => self_signed_tls_client_auth::verify(client, certificate, now),
        };
        match outcome {
            Ok(()) => return (method, Ok(())),
            Err(reason) => refusal = Some((method, reason)),
        }
    }
    if let Some((method, reason)) = refusal {
        return (method, Err(reason));
    }
    if client.allows_auth_method(AuthMethod::None) {
        return (AuthMethod::None, none::verify(client));
    }
    (AuthMethod::TlsClientAuth, Err("client is not registered for mutual TLS".into()))
}

/// Why a credential was refused: logged, never sent (the client sees `invalid_client`).
pub(crate) type Refusal = std::borrow::Cow<'static, str>;
