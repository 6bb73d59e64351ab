//! Shared client secrets: argon2id PHC strings (from `value`) or operator-given SHA-256
//! digests (from `sha256`), checked through [`crate::secret_checks`].

use super::{MethodContext, Refusal};
use crate::OAuthError;
use crate::model::{Client, ClientCredential};
use crate::secret::{Secret, StoredSecret};

/// Whether `secret` matches one of the client's current shared secrets.
///
/// # Errors
/// `temporarily_unavailable` when a slow check is needed and its queue is full.
pub(super) async fn verify(
    cx: &MethodContext<'_>,
    client: &Client,
    secret: &Secret,
) -> Result<Result<(), Refusal>, OAuthError> {
    let stored: Vec<StoredSecret> = client
        .credentials
        .iter()
        .filter(|credential| credential.is_current(cx.now))
        .filter_map(|credential| match credential {
            ClientCredential::SharedSecret { sha256, .. } => Some(StoredSecret::Sha256(*sha256)),
            ClientCredential::SaltedSecret { argon2id, .. } => Some(StoredSecret::Argon2id(argon2id.clone())),
            _ => None,
        })
        .collect();
    if stored.is_empty() {
        return Ok(Err("the client has no current shared secret".into()));
    }
    let stored: Vec<&StoredSecret> = stored.iter().collect();
    if crate::secret_checks::verify(
        cx.secret_checks,
        cx.password_checks,
        client.client_id.as_str(),
        &stored,
        secret,
    )
    .await?
    {
        Ok(Ok(()))
    } else {
        Ok(Err("wrong client secret".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::verify;
    use crate::client_auth::testing::{NOW, Parts, TOKEN, client};
    use crate::model::{AuthMethod, ClientCredential};
    use crate::secret::{Secret, SecretHash};

    #[tokio::test]
    async fn a_digest_secret_matches_only_its_value_and_only_while_current() {
        let parts = Parts::new();
        let registered = client(
            &[AuthMethod::ClientSecretBasic],
            vec![
                ClientCredential::SharedSecret { sha256: SecretHash::of("old"), expires: Some(NOW) },
                ClientCredential::SharedSecret { sha256: SecretHash::of("new"), expires: None },
            ],
        );
        let cx = parts.at(TOKEN, NOW);
        assert!(verify(&cx, &registered, &Secret::new("new")).await.unwrap().is_ok());
        assert!(verify(&cx, &registered, &Secret::new("wrong")).await.unwrap().is_err());
        assert!(verify(&cx, &registered, &Secret::new("old")).await.unwrap().is_err(), "expired at NOW");
        let before = parts.at(TOKEN, NOW - 1);
        assert!(verify(&before, &registered, &Secret::new("old")).await.unwrap().is_ok(), "rotation overlap");
    }

    #[tokio::test]
    async fn an_argon2id_secret_is_checked_slowly_once_then_remembered_for_its_client_only() {
        let parts = Parts::new();
        let phc = crate::password::hash_password("s3cret", &crate::random::Rng::default()).unwrap();
        let registered = client(
            &[AuthMethod::ClientSecretPost],
            vec![ClientCredential::SaltedSecret { argon2id: phc, expires: None }],
        );
        let cx = parts.at(TOKEN, NOW);
        assert!(verify(&cx, &registered, &Secret::new("wrong")).await.unwrap().is_err());
        assert!(parts.secret_checks.is_empty(), "a wrong secret is never remembered");
        assert!(verify(&cx, &registered, &Secret::new("s3cret")).await.unwrap().is_ok());
        assert_eq!(parts.secret_checks.len(), 1);
        assert!(verify(&cx, &registered, &Secret::new("s3cret")).await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn a_client_with_only_keys_has_no_secret_to_match() {
        let parts = Parts::new();
        let keys_only = client(
            &[AuthMethod::ClientSecretBasic],
            vec![ClientCredential::JwksUri { jwks_uri: "https://svc.example/jwks".into(), expires: None }],
        );
        assert!(verify(&parts.at(TOKEN, NOW), &keys_only, &Secret::new("")).await.unwrap().is_err());
    }
}
