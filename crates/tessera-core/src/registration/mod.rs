//! Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592):
//! clients, MCP clients among them, register themselves at `/register` and read,
//! replace or delete their registration at `/register/{client_id}` with the
//! registration access token they were given.
//!
//! Every registered client is held to OAuth 2.1's rules: the code flow with PKCE
//! (always), optionally refresh tokens, nothing else; redirect URIs without
//! fragments, https for web clients (http only on loopback), loopback or a private-use
//! scheme for native ones. Secrets and registration access tokens are kept only as
//! SHA-256 hashes of 256 random bits; the secret is shown once, at registration.

pub mod client_use;
pub mod metadata;

use serde_json::{Value, json};

use crate::model::{Client, ClientCredential, ClientId};
use crate::secret::SecretHash;
use crate::store::Source;
use crate::{ErrorCode, OAuthError, Provider, Timestamp};

pub use crate::settings::RegistrationSettings;
pub use client_use::{ClientUse, ClientUses};
use client_use::{is_used, mark_used};
use metadata::{Authentication, Checked, check, metadata_error};
pub use metadata::{ClientMetadata, Registration, client_for, parse};

/// Registrations one address may make per window (anonymous callers must not be able
/// to fill the store).
pub const MAX_REGISTRATIONS_PER_ADDRESS: u32 = 20;
/// The window of [`MAX_REGISTRATIONS_PER_ADDRESS`], in seconds.
pub const REGISTRATION_WINDOW: i64 = 3600;

/// Removes registered clients nobody used for `unused_client_lifetime` (their grants
/// with them); returns how many. Run by every instance's upkeep; removing twice is
/// harmless.
///
/// # Errors
/// When the store fails.
pub async fn remove_unused(provider: &Provider, now: Timestamp) -> Result<u64, OAuthError> {
    let mut removed = 0;
    for (client_id, source) in provider.store.client_sources().await? {
        if source != Source::Dynamic || is_used(provider.store.as_ref(), &client_id, now).await? {
            continue;
        }
        if provider.store.remove_client(&client_id, now).await? {
            tracing::info!(%client_id, "registered client removed: unused");
            removed += 1;
        }
    }
    if removed > 0 {
        provider.clients.invalidate();
    }
    Ok(removed)
}

fn invalid_token() -> OAuthError {
    OAuthError::new(ErrorCode::InvalidToken, "missing, unknown or revoked registration access token")
}

/// Whether the request's Bearer token admits a new registration (RFC 7591 §3).
///
/// # Errors
/// `invalid_token` when an initial access token is configured and `bearer` is not it.
pub fn admit(provider: &Provider, bearer: Option<&str>) -> Result<(), OAuthError> {
    let Some(expected) = &provider.settings.registration.initial_access_token else { return Ok(()) };
    match bearer {
        Some(token) if crate::secret::constant_time_eq(token, expected.expose()) => Ok(()),
        _ => Err(OAuthError::new(ErrorCode::InvalidToken, "registration needs the initial access token")),
    }
}

/// The registration as answered (RFC 7591 §3.2.1, RFC 7592 §3): the metadata with
/// `client_id` and the management fields; `secret` and `access_token` when new.
fn answer(
    provider: &Provider,
    client: &Client,
    registration: &Registration,
    secret: Option<&str>,
    access_token: Option<&str>,
) -> Value {
    let mut body = serde_json::to_value(&registration.metadata).unwrap_or_else(|_| json!({}));
    body["client_id"] = json!(client.client_id.as_str());
    body["client_id_issued_at"] = json!(registration.issued_at);
    if let Some(secret) = secret {
        body["client_secret"] = json!(secret);
        // RFC 7591 §3.2.1: 0, the secret does not expire.
        body["client_secret_expires_at"] = json!(0);
    }
    if let Some(token) = access_token {
        body["registration_access_token"] = json!(token);
    }
    body["registration_client_uri"] = json!(registration_client_uri(provider, &client.client_id));
    body
}

/// Where a client manages its registration (RFC 7592 §1).
#[must_use]
pub fn registration_client_uri(provider: &Provider, client_id: &ClientId) -> String {
    let id: String = url::form_urlencoded::byte_serialize(client_id.as_str().as_bytes()).collect();
    provider.settings.endpoint(&format!("/register/{id}"))
}

/// Registers a client (RFC 7591 §3); the answer for `201 Created`. `address` is the
/// caller's, for the per-address limit.
///
/// # Errors
/// `invalid_client_metadata` / `invalid_redirect_uri` for metadata this server does
/// not accept; `temporarily_unavailable` past the per-address limit.
pub async fn register(
    provider: &Provider,
    metadata: ClientMetadata,
    address: &str,
) -> Result<Value, OAuthError> {
    let now = provider.clock.now();
    let client_id = ClientId(provider.rng.identifier());
    let Checked { mut client, metadata, authentication } =
        check(&provider.settings.registration.allowed_scopes, &client_id, metadata)?;
    let admitted = provider
        .store
        .reserve_attempt(
            &format!("register:{address}"),
            MAX_REGISTRATIONS_PER_ADDRESS,
            now,
            REGISTRATION_WINDOW,
        )
        .await?;
    if !admitted {
        tracing::warn!(address, "registration refused: too many from this address");
        return Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "too many registrations from this address; try again later",
        )
        .retry_after(REGISTRATION_WINDOW));
    }
    let secret = match authentication {
        Authentication::Secret => Some(provider.rng.token()),
        Authentication::None | Authentication::Keys(_) => None,
    };
    if let Some(secret) = &secret {
        client.credentials =
            vec![ClientCredential::SharedSecret { sha256: SecretHash::of(secret), expires: None }];
    }
    let access_token = provider.rng.token();
    let registration = Registration { access_token: SecretHash::of(&access_token), issued_at: now, metadata };
    client.registration = Some(registration.clone());
    // Unused from now on: removed after the lifetime unless it gets tokens. Written
    // before the client, so that no instance's upkeep ever sees the client without it
    // (and removes a client that was registered a moment ago).
    let lifetime = provider.settings.registration.unused_client_lifetime;
    mark_used(provider.store.as_ref(), &client_id, now + lifetime).await?;
    provider.store.put_clients_from(Source::Dynamic, std::slice::from_ref(&client)).await?;
    tracing::info!(%client_id, public = client.is_public(), "client registered");
    Ok(answer(provider, &client, &registration, secret.as_deref(), Some(&access_token)))
}

/// The registered client `client_id` when `bearer` is its registration access token.
async fn authorized(
    provider: &Provider,
    client_id: &str,
    bearer: Option<&str>,
) -> Result<Client, OAuthError> {
    let Some(token) = bearer else { return Err(invalid_token()) };
    let client = provider.store.client(&ClientId(client_id.to_owned())).await?;
    // RFC 7592 §2: an unknown client and a wrong token look the same (401).
    match client {
        Some(client) if client.registration.as_ref().is_some_and(|r| r.access_token.matches(token)) => {
            Ok(client)
        }
        _ => Err(invalid_token()),
    }
}

/// RFC 7592 §2.1: the registration as it stands (the secret is never shown again).
///
/// # Errors
/// `invalid_token` for an unknown client or a wrong token.
pub async fn read(provider: &Provider, client_id: &str, bearer: Option<&str>) -> Result<Value, OAuthError> {
    let client = authorized(provider, client_id, bearer).await?;
    let Some(registration) = &client.registration else { return Err(invalid_token()) };
    Ok(answer(provider, &client, registration, None, None))
}

/// RFC 7592 §2.2: replaces the registration with `metadata` (the same `client_id`);
/// the registration access token is rotated, the secret kept (a new one only when the
/// client turns confidential).
///
/// # Errors
/// `invalid_token` as [`read`]; `invalid_client_metadata` / `invalid_redirect_uri`
/// as [`register`], and for a body naming another client or a wrong secret.
pub async fn replace(
    provider: &Provider,
    client_id: &str,
    bearer: Option<&str>,
    body: &[u8],
) -> Result<Value, OAuthError> {
    let current = authorized(provider, client_id, bearer).await?;
    let Some(previous) = current.registration.clone() else { return Err(invalid_token()) };
    let raw: Value =
        serde_json::from_slice(body).map_err(|_| metadata_error("the body is not a JSON object"))?;
    if raw.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Err(metadata_error("the body's client_id must be the registered one (RFC 7592 §2.2)"));
    }
    if let Some(sent) = raw.get("client_secret") {
        let kept = current.credentials.iter().any(|credential| match credential {
            ClientCredential::SharedSecret { sha256, .. } => {
                sent.as_str().is_some_and(|sent| sha256.matches(sent))
            }
            _ => false,
        });
        if !kept {
            return Err(metadata_error("client_secret does not match the registered one"));
        }
    }
    let metadata: ClientMetadata = serde_json::from_value(raw)
        .map_err(|error| metadata_error(format!("not client metadata: {error}")))?;
    let Checked { mut client, metadata, authentication } =
        check(&provider.settings.registration.allowed_scopes, &current.client_id, metadata)?;
    let kept_secret: Vec<ClientCredential> = current
        .credentials
        .iter()
        .filter(|credential| matches!(credential, ClientCredential::SharedSecret { .. }))
        .cloned()
        .collect();
    let mut new_secret = None;
    if let Authentication::Secret = authentication {
        if kept_secret.is_empty() {
            let secret = provider.rng.token();
            client.credentials =
                vec![ClientCredential::SharedSecret { sha256: SecretHash::of(&secret), expires: None }];
            new_secret = Some(secret);
        } else {
            client.credentials = kept_secret;
        }
    }
    let access_token = provider.rng.token();
    let registration =
        Registration { access_token: SecretHash::of(&access_token), issued_at: previous.issued_at, metadata };
    client.registration = Some(registration.clone());
    provider.store.put_clients_from(Source::Dynamic, std::slice::from_ref(&client)).await?;
    provider.clients.invalidate();
    tracing::info!(client_id = %client.client_id, "client registration replaced");
    Ok(answer(provider, &client, &registration, new_secret.as_deref(), Some(&access_token)))
}

/// RFC 7592 §2.3: deletes the client; its grants are revoked with it.
///
/// # Errors
/// `invalid_token` as [`read`].
pub async fn delete(provider: &Provider, client_id: &str, bearer: Option<&str>) -> Result<(), OAuthError> {
    let client = authorized(provider, client_id, bearer).await?;
    provider.store.remove_client(&client.client_id, provider.clock.now()).await?;
    provider.clients.invalidate();
    tracing::info!(client_id = %client.client_id, "client registration deleted");
    Ok(())
}
