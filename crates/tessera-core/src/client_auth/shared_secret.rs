//! Shared client secrets, kept as SHA-256 and compared in constant time.

use super::Refusal;
use crate::Timestamp;
use crate::model::{Client, ClientCredential};
use crate::secret::Secret;

/// Whether `secret` matches one of the client's current shared secrets.
pub(super) fn verify(client: &Client, secret: &Secret, now: Timestamp) -> Result<(), Refusal> {
    let mut any_current = false;
    let mut matched = false;
    for credential in &client.credentials {
        if let ClientCredential::SharedSecret { sha256, .. } = credential
            && credential.is_current(now)
        {
            any_current = true;
            // No early exit: every current secret is compared.
            matched |= sha256.matches(secret.expose());
        }
    }
    match (matched, any_current) {
        (true, _) => Ok(()),
        (false, false) => Err("the client has no current shared secret".into()),
        (false, true) => Err("wrong client secret".into()),
    }
}
