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

#[cfg(test)]
mod tests {
    use super::verify;
    use crate::client_auth::testing::{NOW, client};
    use crate::model::{AuthMethod, Client, ClientCertificate, ClientCredential, DistinguishedName};

    fn certificate(subject: &str, issued_by_client_ca: bool) -> ClientCertificate {
        ClientCertificate {
            thumbprint: "thumbprint".into(),
            subject: DistinguishedName::parse(subject).unwrap(),
            not_before: NOW - 3600,
            not_after: NOW + 3600,
            issued_by_client_ca,
        }
    }

    fn registered(subject: &str, expires: Option<i64>) -> Client {
        client(
            &[AuthMethod::TlsClientAuth],
            vec![ClientCredential::X509Subject { subject: subject.into(), expires }],
        )
    }

    #[test]
    fn a_certificate_from_the_client_ca_with_the_registered_subject_authenticates() {
        let svc = registered("CN=svc,O=Example,C=DE", None);
        assert!(verify(&svc, &certificate("CN=svc,O=Example,C=DE", true), NOW).is_ok());
    }

    #[test]
    fn the_subject_is_matched_as_a_distinguished_name_not_as_text() {
        // RFC 4517 §4.2.15: types and values case-insensitive, insignificant spaces ignored.
        let svc = registered("cn=SVC, o=Example ,C=de", None);
        assert!(verify(&svc, &certificate("CN=svc,O=Example,C=DE", true), NOW).is_ok());
        // The order of RDNs is part of the name.
        assert!(verify(&svc, &certificate("C=DE,O=Example,CN=svc", true), NOW).is_err());
    }

    #[test]
    fn a_certificate_the_client_ca_did_not_issue_is_refused_whatever_its_subject() {
        // RFC 8705 §2.1: anyone can write any subject into a self-signed certificate.
        let svc = registered("CN=svc,O=Example,C=DE", None);
        assert!(verify(&svc, &certificate("CN=svc,O=Example,C=DE", false), NOW).is_err());
    }

    #[test]
    fn an_expired_or_not_yet_valid_certificate_is_refused() {
        let svc = registered("CN=svc", None);
        let presented = certificate("CN=svc", true);
        assert!(verify(&svc, &presented, presented.not_after + 1).is_err());
        assert!(verify(&svc, &presented, presented.not_before - 1).is_err());
        assert!(verify(&svc, &presented, presented.not_after).is_ok(), "valid through notAfter");
    }

    #[test]
    fn another_subject_or_a_retired_registration_is_refused() {
        assert!(verify(&registered("CN=svc", None), &certificate("CN=other", true), NOW).is_err());
        let retired = registered("CN=svc", Some(NOW));
        assert!(verify(&retired, &certificate("CN=svc", true), NOW).is_err());
        let retiring = registered("CN=svc", Some(NOW + 1));
        assert!(verify(&retiring, &certificate("CN=svc", true), NOW).is_ok());
    }

    #[test]
    fn a_registered_thumbprint_is_no_subject() {
        let by_thumbprint = client(
            &[AuthMethod::TlsClientAuth],
            vec![ClientCredential::X509Thumbprint { thumbprint: "thumbprint".into(), expires: None }],
        );
        assert!(verify(&by_thumbprint, &certificate("CN=svc", true), NOW).is_err());
    }
}
