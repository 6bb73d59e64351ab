//! Sender-constrained tokens: the `cnf` claim (RFC 7800) and its proofs.

pub mod dpop;

use serde::{Deserialize, Serialize};

/// A token's proof-of-possession binding.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 9449 §6.1: the JWK SHA-256 thumbprint (RFC 7638) of the DPoP key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    /// RFC 8705 §3.1: the SHA-256 thumbprint of the client's TLS certificate.
    #[serde(default, rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
}

impl Confirmation {
    /// The binding for a token issued to a request with this DPoP key and this TLS
    /// client certificate, or `None` for a plain bearer token.
    #[must_use]
    pub fn of(jkt: Option<String>, certificate_thumbprint: Option<String>) -> Option<Self> {
        (jkt.is_some() || certificate_thumbprint.is_some())
            .then_some(Self { jkt, x5t_s256: certificate_thumbprint })
    }
}
