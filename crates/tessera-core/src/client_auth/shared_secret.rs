//! Shared client secrets: argon2id PHC strings (from `value`) or operator-given SHA-256
//! digests (from `sha256`), checked through [`crate::secret_checks`].

use super::Refusal;
use crate::model::{Client, ClientCredential};
use crate::provider::Provider;
use crate::secret::{Secret, StoredSecret};
use crate::{OAuthError, Timestamp};

/// Whether `secret` matches one of the client's current shared secrets.
///
/// # Errors
/// `temporarily_unavailable` when a slow check is needed and its queue is full.
pub(super) async fn verify(
    provider: &Provider,
    client: &Client,
    secret: &Secret,
    now: Timestamp,
) -> Result<Result<(), Refusal>, OAuthError> {
    let stored: Vec<StoredSecret> = client
        .credentials
        .iter()
        .filter(|credential| credential.is_current(now))
        .filter_map(|credential| match credential {
            ClientCredential::SharedSecret { sha256, .. } => Some(StoredSecret::Sha256(*sha256)),
            ClientCredential::SaltedSecret { argon2id, .. } => Some(StoredSecret::Argon2id(argon2id.clone())),
            _ => None,
        })
        .collect();
    if stored.is_empty() {
        return Ok(Err("the client has no current shared secret".into()));
    }
    let stored: Vec<&StoredSecret> = stored.iter().collect();
    if crate::secret_checks::verify(provider, client.client_id.as_str(), &stored, secret).await? {
        Ok(Ok(()))
    } else {
        Ok(Err("wrong client secret".into()))
    }
}
