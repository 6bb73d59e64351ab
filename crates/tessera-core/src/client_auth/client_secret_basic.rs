//! `client_secret_basic`: the secret in the `Authorization: Basic` header (RFC 6749 §2.3.1).

use super::{Refusal, shared_secret};
use crate::model::Client;
use crate::provider::Provider;
use crate::secret::Secret;

/// Checks the header's secret against the client's shared secrets.
pub(super) async fn verify(
    provider: &Provider,
    client: &Client,
    secret: &Secret,
) -> Result<Result<(), Refusal>, crate::OAuthError> {
    shared_secret::verify(provider, client, secret, provider.clock.now()).await
}
