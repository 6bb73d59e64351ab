//! A client's X.509 certificate as the TLS layer received it (RFC 8705): what client
//! authentication matches and what certificate-bound tokens are bound to.

use std::fmt;

use x509_parser::der_parser::oid::Oid;
use x509_parser::prelude::{FromDer as _, X509Certificate, X509Name};

use crate::Timestamp;
use crate::secret::{b64url, sha256};

/// The end-entity certificate a client presented, checked by the TLS layer for
/// possession of its private key (the handshake signature) but not for trust.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// RFC 8705 §3.1: the base64url SHA-256 of the DER certificate (`x5t#S256`).
    pub thumbprint: String,
    /// The subject, for `tls_client_auth` (RFC 8705 §2.1).
    pub subject: DistinguishedName,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// Whether the chain the client sent leads to the configured client CA
    /// (`[server.tls] client_ca`), checked by the TLS layer. Only then does the
    /// subject mean anything: anyone can write any subject into a self-signed
    /// certificate.
    pub issued_by_client_ca: bool,
}

impl ClientCertificate {
    /// Reads the parts Tessera uses from a DER certificate.
    ///
    /// # Errors
    /// When the bytes are not one well-formed X.509 certificate.
    pub fn from_der(der: &[u8], issued_by_client_ca: bool) -> Result<Self, String> {
        let (rest, certificate) =
            X509Certificate::from_der(der).map_err(|error| format!("malformed certificate: {error}"))?;
        if !rest.is_empty() {
            return Err("trailing bytes after the certificate".into());
        }
        let validity = certificate.validity();
        Ok(Self {
            thumbprint: b64url(sha256(der)),
            subject: DistinguishedName::of(certificate.subject()),
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            issued_by_client_ca,
        })
    }

    /// Whether `now` is within the certificate's validity period (RFC 5280 §4.1.2.5).
    #[must_use]
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("subject", &self.subject.to_string())
            .field("thumbprint", &self.thumbprint)
            .field("issued_by_client_ca", &self.issued_by_client_ca)
            .finish_non_exhaustive()
    }
}

/// A distinguished name in RFC 4514 order (most specific RDN first), each RDN a
/// sorted set of `TYPE=value` attributes. Compared the way `distinguishedNameMatch`
/// compares the usual string attributes: attribute types and values case-insensitive,
/// insignificant spaces ignored (RFC 4517 §4.2.15, §4.2.11).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct DistinguishedName {
    rdns: Vec<Vec<(String, String)>>,
}

impl DistinguishedName {
    /// The subject or issuer of a parsed certificate.
    fn of(name: &X509Name<'_>) -> Self {
        // DER lists RDNs from the root of the tree; RFC 4514 §2.1 writes them reversed.
        let mut rdns: Vec<Vec<(String, String)>> = name
            .iter_rdn()
            .map(|rdn| {
                let mut attributes: Vec<_> = rdn
                    .iter()
                    .map(|attribute| {
                        let value = match attribute.as_str() {
                            Ok(text) => normalize_value(text),
                            // RFC 4514 §2.4: a value that is not a string is `#` + hex of its BER.
                            Err(_) => format!("#{}", hex(attribute.attr_value().data)),
                        };
                        (attribute_type_name(attribute.attr_type()), value)
                    })
                    .collect();
                attributes.sort();
                attributes
            })
            .collect();
        rdns.reverse();
        Self { rdns }
    }

    /// Parses a registered DN string such as `CN=svc,O=Example\, Inc.,C=DE` (RFC 4514 §3).
    ///
    /// # Errors
    /// When an RDN has no `=`, or a type or value is empty.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rdns = Vec::new();
        for rdn in split_unescaped(text, ',') {
            let mut attributes = Vec::new();
            for attribute in split_unescaped(&rdn, '+') {
                let (kind, value) =
                    attribute.split_once('=').ok_or_else(|| format!("`{}` has no `=`", attribute.trim()))?;
                let kind = kind.trim().to_ascii_uppercase();
                let kind = kind.strip_prefix("OID.").unwrap_or(&kind).to_owned();
                if kind.is_empty() {
                    return Err("an attribute type is empty".into());
                }
                let value = unescape(value.trim())?;
                if value.is_empty() {
                    return Err(format!("the value of {kind} is empty"));
                }
                let kind = canonical_type(&kind);
                let value = if value.starts_with('#') { value } else { normalize_value(&value) };
                attributes.push((kind, value));
            }
            attributes.sort();
            rdns.push(attributes);
        }
        if rdns.is_empty() {
            return Err("the distinguished name is empty".into());
        }
        Ok(Self { rdns })
    }
}

impl fmt::Debug for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DistinguishedName({self})")
    }
}

impl fmt::Display for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, rdn) in self.rdns.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            for (position, (kind, value)) in rdn.iter().enumerate() {
                if position > 0 {
                    f.write_str("+")?;
                }
                write!(f, "{kind}={value}")?;
            }
        }
        Ok(())
    }
}

/// RFC 4514 §3's short names for the attribute types certificates commonly carry;
/// anything else by its dotted OID.
const SHORT_NAMES: [(&str, &str); 10] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.6", "C"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    // Not in RFC 4514's table, but how OpenSSL and most tools write it.
    ("1.2.840.113549.1.9.1", "EMAILADDRESS"),
];

fn attribute_type_name(oid: &Oid<'_>) -> String {
    let dotted = oid.to_id_string();
    canonical_type(&dotted)
}

/// One spelling per attribute type: the short name where there is one.
fn canonical_type(kind: &str) -> String {
    SHORT_NAMES
        .iter()
        .find(|(oid, _)| *oid == kind)
        .map_or_else(|| kind.to_ascii_uppercase(), |(_, short)| (*short).to_owned())
}

/// Case folded, inner runs of spaces collapsed, outer spaces dropped.
fn normalize_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Splits at `separator` where it is not escaped by a backslash.
fn split_unescaped(text: &str, separator: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for character in text.chars() {
        if escaped {
            escaped = false;
        } else if character == '\\' {
            escaped = true;
        } else if character == separator {
            parts.push(String::new());
            continue;
        }
        if let Some(part) = parts.last_mut() {
            part.push(character);
        }
    }
    if parts.len() == 1 && parts[0].trim().is_empty() {
        return Vec::new();
    }
    parts
}

/// RFC 4514 §3: `\` before a special character, or two hex digits of a UTF-8 byte.
fn unescape(value: &str) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut input = value.bytes();
    while let Some(byte) = input.next() {
        if byte != b'\\' {
            bytes.push(byte);
            continue;
        }
        match input.next() {
            Some(high) if high.is_ascii_hexdigit() => {
                let low =
                    input.next().filter(u8::is_ascii_hexdigit).ok_or("a `\\` escape needs two hex digits")?;
                let pair = [high, low];
                let text = std::str::from_utf8(&pair).map_err(|error| error.to_string())?;
                bytes.push(u8::from_str_radix(text, 16).map_err(|error| error.to_string())?);
            }
            Some(special) => bytes.push(special),
            None => return Err("a value ends in a lone `\\`".into()),
        }
    }
    String::from_utf8(bytes).map_err(|_| "an escaped value is not UTF-8".to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_names_compare_like_distinguished_name_match() {
        let a = DistinguishedName::parse("CN=Payments Service,O=Example\\, Inc.,C=DE").unwrap();
        let b = DistinguishedName::parse("cn = payments   service , o=EXAMPLE\\2C INC. ,c=de").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "CN=payments service,O=example, inc.,C=de");
        assert_ne!(a, DistinguishedName::parse("O=Example\\, Inc.,CN=Payments Service,C=DE").unwrap());
        assert_ne!(a, DistinguishedName::parse("CN=Payments Service,C=DE").unwrap());
    }

    #[test]
    fn dotted_types_and_multi_valued_rdns() {
        let a = DistinguishedName::parse("2.5.4.3=svc+UID=7,DC=example").unwrap();
        let b = DistinguishedName::parse("uid=7+CN=svc,dc=Example").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            DistinguishedName::parse("OID.2.5.4.3=svc").unwrap(),
            DistinguishedName::parse("CN=svc").unwrap()
        );
    }

    #[test]
    fn malformed_names_are_refused() {
        for text in ["", "CN", "CN=", "=svc", "CN=a\\", "CN=a\\4"] {
            assert!(DistinguishedName::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(ClientCertificate::from_der(b"not a certificate", false).is_err());
    }
}
