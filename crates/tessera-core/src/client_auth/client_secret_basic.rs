//! `client_secret_basic`: the secret in the `Authorization: Basic` header (RFC 6749 §2.3.1).

use super::{MethodContext, Refusal, shared_secret};
use crate::model::Client;
use crate::secret::Secret;

/// Checks the header's secret against the client's shared secrets.
pub(super) async fn verify(
    cx: &MethodContext<'_>,
    client: &Client,
    secret: &Secret,
) -> Result<Result<(), Refusal>, crate::OAuthError> {
    shared_secret::verify(cx, client, secret).await
}

#[cfg(test)]
mod tests {
    use super::verify;
    use crate::client_auth::testing::{NOW, Parts, TOKEN, client};
    use crate::model::{AuthMethod, ClientCredential};
    use crate::secret::{Secret, SecretHash};

    fn with_secret(value: &str, expires: Option<i64>) -> crate::model::Client {
        let secret = ClientCredential::SharedSecret { sha256: SecretHash::of(value), expires };
        client(&[AuthMethod::ClientSecretBasic], vec![secret])
    }

    #[tokio::test]
    async fn the_registered_secret_authenticates_and_any_other_is_refused() {
        let parts = Parts::new();
        let cx = parts.at(TOKEN, NOW);
        let svc = with_secret("s3cret", None);
        assert!(verify(&cx, &svc, &Secret::new("s3cret")).await.unwrap().is_ok());
        assert!(verify(&cx, &svc, &Secret::new("s3cret ")).await.unwrap().is_err());
        assert!(verify(&cx, &svc, &Secret::new("")).await.unwrap().is_err());
    }

    #[tokio::test]
    async fn a_retired_secret_is_refused() {
        let parts = Parts::new();
        let retired = with_secret("s3cret", Some(NOW));
        assert!(verify(&parts.at(TOKEN, NOW), &retired, &Secret::new("s3cret")).await.unwrap().is_err());
        assert!(verify(&parts.at(TOKEN, NOW - 1), &retired, &Secret::new("s3cret")).await.unwrap().is_ok());
    }
}
