//! Sender-constrained tokens: the `cnf` claim (RFC 7800) and its proofs.

pub mod dpop;

use serde::{Deserialize, Serialize};

/// A token's proof-of-possession binding.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 9449 §6.1: the JWK SHA-256 thumbprint (RFC 7638) of the DPoP key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
}
