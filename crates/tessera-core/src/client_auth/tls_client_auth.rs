//! `tls_client_auth`: the client's certificate chains to the configured client CA and
//! its subject is the DN the client registered (RFC 8705 §2.1).

use super::Refusal;
use crate::Timestamp;
use crate::model::{Client, ClientCertificate, ClientCredential, DistinguishedName};

/// Checks the presented certificate against the client's registered subjects.
pub(super) fn verify(
    client: &Client,
    certificate: &ClientCertificate,
    now: Timestamp,
) -> Result<(), Refusal> {
    // RFC 8705 §2.1: PKI path validation first; a subject means nothing without it.
    if !certificate.issued_by_client_ca {
        return Err("certificate is not issued by the configured client CA".into());
    }
    if !certificate.is_valid_at(now) {
        return Err("certificate is expired or not yet valid".into());
    }
    let matches = client.credentials.iter().any(|credential| match credential {
        ClientCredential::X509Subject { subject, .. } if credential.is_current(now) => {
            DistinguishedName::parse(subject).is_ok_and(|registered| registered == certificate.subject)
        }
        _ => false,
    });
    if matches {
        Ok(())
    } else {
        Err(format!("certificate subject `{}` is not registered for the client", certificate.subject).into())
    }
}
