//! `self_signed_tls_client_auth`: the client's certificate is the one it registered,
//! matched by its SHA-256 thumbprint; no CA is involved (RFC 8705 §2.2).

use super::Refusal;
use crate::Timestamp;
use crate::model::{Client, ClientCertificate, ClientCredential};
use crate::secret::constant_time_eq;

/// Checks the presented certificate's thumbprint against the registered ones.
pub(super) fn verify(
    client: &Client,
    certificate: &ClientCertificate,
    now: Timestamp,
) -> Result<(), Refusal> {
    // RFC 8705 §2.2 leaves the validity period to the server; an expired key pair is
    // retired everywhere else in Tessera, so here too.
    if !certificate.is_valid_at(now) {
        return Err("certificate is expired or not yet valid".into());
    }
    let matches = client.credentials.iter().any(|credential| match credential {
        ClientCredential::X509Thumbprint { thumbprint, .. } if credential.is_current(now) => {
            constant_time_eq(thumbprint, &certificate.thumbprint)
        }
        _ => false,
    });
    if matches { Ok(()) } else { Err("certificate thumbprint is not registered for the client".into()) }
}
