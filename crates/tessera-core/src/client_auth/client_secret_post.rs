//! `client_secret_post`: `client_id` and `client_secret` in the body (RFC 6749 §2.3.1).

use super::{MethodContext, Refusal, shared_secret};
use crate::model::Client;
use crate::secret::Secret;

/// Checks the body's secret against the client's shared secrets.
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

    #[tokio::test]
    async fn during_a_rotation_both_secrets_authenticate_until_the_old_one_retires() {
        let parts = Parts::new();
        let rotating = client(
            &[AuthMethod::ClientSecretPost],
            vec![
                ClientCredential::SharedSecret { sha256: SecretHash::of("old"), expires: Some(NOW + 60) },
                ClientCredential::SharedSecret { sha256: SecretHash::of("new"), expires: None },
            ],
        );
        for (secret, at, accepted) in
            [("old", NOW, true), ("new", NOW, true), ("old", NOW + 60, false), ("new", NOW + 60, true)]
        {
            let outcome = verify(&parts.at(TOKEN, at), &rotating, &Secret::new(secret)).await.unwrap();
            assert_eq!(outcome.is_ok(), accepted, "{secret} at {at}");
        }
    }

    #[tokio::test]
    async fn a_secret_is_compared_exactly_and_a_client_without_one_is_refused() {
        let parts = Parts::new();
        let cx = parts.at(TOKEN, NOW);
        let svc = client(
            &[AuthMethod::ClientSecretPost],
            vec![ClientCredential::SharedSecret { sha256: SecretHash::of("S3cret"), expires: None }],
        );
        assert!(verify(&cx, &svc, &Secret::new("s3cret")).await.unwrap().is_err(), "case matters");
        let keyed = client(
            &[AuthMethod::ClientSecretPost],
            vec![ClientCredential::X509Thumbprint { thumbprint: "S3cret".into(), expires: None }],
        );
        assert!(verify(&cx, &keyed, &Secret::new("S3cret")).await.unwrap().is_err());
    }
}
