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

#[cfg(test)]
mod tests {
    use super::verify;
    use crate::client_auth::testing::{NOW, client};
    use crate::model::{AuthMethod, Client, ClientCertificate, ClientCredential, DistinguishedName};

    fn certificate(thumbprint: &str) -> ClientCertificate {
        ClientCertificate {
            thumbprint: thumbprint.into(),
            subject: DistinguishedName::parse("CN=anything").unwrap(),
            not_before: NOW - 3600,
            not_after: NOW + 3600,
            // RFC 8705 §2.2: no CA is involved.
            issued_by_client_ca: false,
        }
    }

    fn registered(thumbprints: &[(&str, Option<i64>)]) -> Client {
        let credentials = thumbprints
            .iter()
            .map(|(thumbprint, expires)| ClientCredential::X509Thumbprint {
                thumbprint: (*thumbprint).into(),
                expires: *expires,
            })
            .collect();
        client(&[AuthMethod::SelfSignedTlsClientAuth], credentials)
    }

    #[test]
    fn the_registered_certificate_authenticates_without_any_ca() {
        assert!(verify(&registered(&[("abc", None)]), &certificate("abc"), NOW).is_ok());
    }

    #[test]
    fn during_a_rollover_either_registered_certificate_authenticates() {
        let svc = registered(&[("old", Some(NOW + 60)), ("new", None)]);
        assert!(verify(&svc, &certificate("old"), NOW).is_ok());
        assert!(verify(&svc, &certificate("new"), NOW).is_ok());
        assert!(verify(&svc, &certificate("old"), NOW + 60).is_err(), "the old one retired");
    }

    #[test]
    fn another_certificate_is_refused_even_with_the_same_subject() {
        assert!(verify(&registered(&[("abc", None)]), &certificate("abd"), NOW).is_err());
        assert!(verify(&registered(&[("abc", None)]), &certificate(""), NOW).is_err());
    }

    #[test]
    fn an_expired_registered_certificate_is_refused() {
        let presented = certificate("abc");
        assert!(verify(&registered(&[("abc", None)]), &presented, presented.not_after + 1).is_err());
    }
}
