//! Proof Key for Code Exchange (RFC 7636), S256 only: OAuth 2.1 removed `plain`.

use subtle::ConstantTimeEq as _;

use crate::secret::{b64url, sha256};

/// Whether `value` has the form of a verifier or an S256 challenge: 43 to 128
/// unreserved characters (RFC 7636 §4.1, §4.2).
#[must_use]
pub fn is_well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 §4.2: the S256 challenge of `verifier`, BASE64URL(SHA256(ASCII(code_verifier))).
#[must_use]
pub fn s256(verifier: &str) -> String {
    b64url(sha256(verifier.as_bytes()))
}

/// RFC 7636 §4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge,
/// compared in constant time.
#[must_use]
pub fn verify(verifier: &str, challenge: &str) -> bool {
    bool::from(s256(verifier).as_bytes().ct_eq(challenge.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b_example_verifies() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_well_formed(verifier) && is_well_formed(challenge));
        assert!(verify(verifier, challenge));
        assert!(!verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX", challenge));
    }

    #[test]
    fn short_or_odd_values_are_malformed() {
        assert!(!is_well_formed("short"));
        assert!(!is_well_formed(&"a".repeat(129)));
        assert!(!is_well_formed(&format!("{}+", "a".repeat(43))));
    }
}
