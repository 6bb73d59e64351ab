//! `none`: a public client identifies itself by `client_id` alone (RFC 6749 §2.1);
//! its grants must carry their own proof (PKCE, device code).

use super::Refusal;
use crate::model::Client;

/// A public client needs no secret; the caller already checked it is registered so.
pub(super) fn verify(client: &Client) -> Result<(), Refusal> {
    if client.is_public() { Ok(()) } else { Err("confidential client sent no credentials".into()) }
}

#[cfg(test)]
mod tests {
    use super::verify;
    use crate::client_auth::testing::client;
    use crate::model::{AuthMethod, ClientCredential};
    use crate::secret::SecretHash;

    #[test]
    fn a_public_client_needs_no_secret() {
        assert!(verify(&client(&[AuthMethod::None], vec![])).is_ok());
    }

    #[test]
    fn a_client_with_a_secret_cannot_leave_it_out() {
        let secret = ClientCredential::SharedSecret { sha256: SecretHash::of("s3cret"), expires: None };
        let confidential = client(&[AuthMethod::None, AuthMethod::ClientSecretBasic], vec![secret]);
        assert!(verify(&confidential).is_err());
    }
}
