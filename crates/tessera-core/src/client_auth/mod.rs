//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3). The request carries exactly one [`Credentials`]; the client is
//! loaded and checked by the method it is *registered* with, never a fallback.

mod client_secret_basic;
mod client_secret_post;
pub mod jwks;
mod none;
mod private_key_jwt;
pub mod registry;
mod self_signed_tls_client_auth;
mod shared_secret;
#[cfg(test)]
mod testing;
mod tls_client_auth;

use std::sync::Arc;

use tracing::info;

pub use jwks::{JwksCache, JwksSource};
pub use private_key_jwt::allowed_algorithm_names as allowed_assertion_algorithms;
pub use registry::ClientRegistry;

use crate::model::{AuthMethod, Client, ClientCertificate, ClientId};
use crate::password::PasswordChecks;
use crate::provider::Provider;
use crate::secret::Secret;
use crate::secret_checks::SecretChecks;
use crate::settings::ClientAuthSettings;
use crate::store::ReplayStore;
use crate::{OAuthError, Timestamp};

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
    let settings = &provider.settings;
    let token_endpoints = [settings.endpoint("/token"), settings.mtls_endpoint("/token")];
    let cx = MethodContext {
        now,
        endpoint,
        issuer: &settings.issuer,
        token_endpoints: [&token_endpoints[0], &token_endpoints[1]],
        settings: &settings.client_authentication,
        secret_checks: &provider.secret_checks,
        password_checks: &provider.password_checks,
        jwks: &provider.jwks,
        replay: provider.store.as_ref(),
    };
    let (method, outcome) = check(&cx, &client, credentials, method).await?;
    match outcome {
        Ok(()) => Ok(AuthenticatedClient { client, method }),
        Err(reason) => {
            info!(client_id = %client_id, method = method.as_str(), %reason, "client authentication failed");
            Err(OAuthError::invalid_client("client authentication failed"))
        }
    }
}

/// What the authentication methods may use, and nothing more: not the `Provider`.
pub(crate) struct MethodContext<'a> {
    pub now: Timestamp,
    /// The endpoint called: an assertion's `aud` may name it.
    pub endpoint: Endpoint<'a>,
    /// This server's identifier, which an assertion's `aud` names.
    pub issuer: &'a str,
    /// The token endpoint's URLs, plain and through the mTLS alias (RFC 8705 §5).
    pub token_endpoints: [&'a str; 2],
    pub settings: &'a ClientAuthSettings,
    /// Remembered argon2id outcomes, so a right secret costs one SHA-256 next time.
    pub secret_checks: &'a SecretChecks,
    /// The bounded queue of slow (argon2id) checks.
    pub password_checks: &'a PasswordChecks,
    /// Keys behind clients' `jwks_uri`s.
    pub jwks: &'a JwksCache,
    /// Assertion `jti`s, each accepted once (RFC 7523 §3 item 7).
    pub replay: &'a dyn ReplayStore,
}

/// Checks `credentials` for `client` by the method they were presented with (`method`),
/// or, for a certificate, the mTLS method the client registered. The outcome names the
/// method used; a refusal says why (logged, never sent).
///
/// # Errors
/// `temporarily_unavailable` when a slow secret check is needed and its queue is full.
pub(crate) async fn check(
    cx: &MethodContext<'_>,
    client: &Client,
    credentials: &Credentials,
    method: AuthMethod,
) -> Result<(AuthMethod, Result<(), Refusal>), OAuthError> {
    Ok(match credentials {
        Credentials::Certificate { certificate, .. } => by_certificate(client, certificate, cx.now),
        _ if !client.allows_auth_method(method) => (method, Err("method not registered".into())),
        // A full queue of slow secret checks is 503 `temporarily_unavailable`, not a
        // wrong secret: the client's secret may well be right.
        Credentials::Basic { secret, .. } => (method, client_secret_basic::verify(cx, client, secret).await?),
        Credentials::Post { secret, .. } => (method, client_secret_post::verify(cx, client, secret).await?),
        Credentials::ClientIdOnly { .. } => (method, none::verify(client)),
        Credentials::Assertion { assertion, .. } => {
            (method, private_key_jwt::verify(cx, client, assertion).await)
        }
        Credentials::Absent => (method, Err("no credentials".into())),
    })
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

#[cfg(test)]
mod tests {
    use super::testing::{NOW, Parts, TOKEN, client};
    use super::{Credentials, check};
    use crate::model::{AuthMethod, ClientCertificate, ClientCredential, DistinguishedName};
    use crate::secret::{Secret, SecretHash};

    fn secret(value: &str) -> Vec<ClientCredential> {
        vec![ClientCredential::SharedSecret { sha256: SecretHash::of(value), expires: None }]
    }

    fn post(value: &str) -> Credentials {
        Credentials::Post { client_id: "svc".into(), secret: Secret::new(value) }
    }

    #[tokio::test]
    async fn the_right_secret_by_a_method_the_client_did_not_register_is_refused() {
        let parts = Parts::new();
        let basic_only = client(&[AuthMethod::ClientSecretBasic], secret("s3cret"));
        let (method, outcome) =
            check(&parts.at(TOKEN, NOW), &basic_only, &post("s3cret"), AuthMethod::ClientSecretPost)
                .await
                .unwrap();
        assert_eq!(method, AuthMethod::ClientSecretPost);
        assert!(outcome.is_err(), "RFC 6749 §2.3: only the registered method");
        let both = client(&[AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost], secret("s3cret"));
        let (_, outcome) =
            check(&parts.at(TOKEN, NOW), &both, &post("s3cret"), AuthMethod::ClientSecretPost).await.unwrap();
        assert!(outcome.is_ok());
    }

    #[tokio::test]
    async fn a_client_id_alone_is_enough_only_for_a_public_client() {
        let parts = Parts::new();
        let alone = Credentials::ClientIdOnly { client_id: "svc".into() };
        let public = client(&[AuthMethod::None], vec![]);
        assert!(check(&parts.at(TOKEN, NOW), &public, &alone, AuthMethod::None).await.unwrap().1.is_ok());
        let confidential = client(&[AuthMethod::None, AuthMethod::ClientSecretBasic], secret("s3cret"));
        let (_, outcome) =
            check(&parts.at(TOKEN, NOW), &confidential, &alone, AuthMethod::None).await.unwrap();
        assert!(outcome.is_err(), "a confidential client sent no credentials");
    }

    fn certificate(subject: &str, thumbprint: &str, issued_by_client_ca: bool) -> Credentials {
        Credentials::Certificate {
            client_id: "svc".into(),
            certificate: ClientCertificate {
                thumbprint: thumbprint.into(),
                subject: DistinguishedName::parse(subject).unwrap(),
                not_before: NOW - 10,
                not_after: NOW + 3600,
                issued_by_client_ca,
            },
        }
    }

    #[tokio::test]
    async fn a_certificate_authenticates_by_the_mtls_method_the_client_registered() {
        let parts = Parts::new();
        let cx = parts.at(TOKEN, NOW);
        let by_subject = client(
            &[AuthMethod::TlsClientAuth],
            vec![ClientCredential::X509Subject { subject: "CN=svc,O=Example".into(), expires: None }],
        );
        let right = certificate("CN=svc,O=Example", "thumb-1", true);
        assert_eq!(
            check(&cx, &by_subject, &right, AuthMethod::TlsClientAuth).await.unwrap(),
            (AuthMethod::TlsClientAuth, Ok(()))
        );
        // RFC 8705 §2.1: a subject means nothing without the CA's chain.
        let self_made = certificate("CN=svc,O=Example", "thumb-1", false);
        assert!(check(&cx, &by_subject, &self_made, AuthMethod::TlsClientAuth).await.unwrap().1.is_err());
        let other = certificate("CN=other,O=Example", "thumb-1", true);
        assert!(check(&cx, &by_subject, &other, AuthMethod::TlsClientAuth).await.unwrap().1.is_err());

        let by_thumbprint = client(
            &[AuthMethod::SelfSignedTlsClientAuth],
            vec![ClientCredential::X509Thumbprint { thumbprint: "thumb-1".into(), expires: None }],
        );
        let (method, outcome) =
            check(&cx, &by_thumbprint, &self_made, AuthMethod::TlsClientAuth).await.unwrap();
        assert_eq!((method, outcome.is_ok()), (AuthMethod::SelfSignedTlsClientAuth, true));
        let another_key = certificate("CN=svc,O=Example", "thumb-2", false);
        assert!(
            check(&cx, &by_thumbprint, &another_key, AuthMethod::TlsClientAuth).await.unwrap().1.is_err()
        );

        let no_mtls = client(&[AuthMethod::ClientSecretBasic], secret("s3cret"));
        assert!(check(&cx, &no_mtls, &right, AuthMethod::TlsClientAuth).await.unwrap().1.is_err());
    }

    #[tokio::test]
    async fn an_expired_certificate_or_credential_is_refused() {
        let parts = Parts::new();
        let registered = client(
            &[AuthMethod::SelfSignedTlsClientAuth],
            vec![ClientCredential::X509Thumbprint { thumbprint: "thumb-1".into(), expires: Some(NOW + 60) }],
        );
        let presented = certificate("CN=svc", "thumb-1", false);
        assert!(
            check(&parts.at(TOKEN, NOW), &registered, &presented, AuthMethod::TlsClientAuth)
                .await
                .unwrap()
                .1
                .is_ok()
        );
        let later = parts.at(TOKEN, NOW + 61);
        assert!(check(&later, &registered, &presented, AuthMethod::TlsClientAuth).await.unwrap().1.is_err());
        let much_later = parts.at(TOKEN, NOW + 7200);
        let forever = client(
            &[AuthMethod::SelfSignedTlsClientAuth],
            vec![ClientCredential::X509Thumbprint { thumbprint: "thumb-1".into(), expires: None }],
        );
        assert!(
            check(&much_later, &forever, &presented, AuthMethod::TlsClientAuth).await.unwrap().1.is_err()
        );
    }
}
