//! `client_secret_post`: `client_id` and `client_secret` in the body (RFC 6749 §2.3.1).

use super::{Refusal, shared_secret};
use crate::model::Client;
use crate::provider::Provider;
use crate::secret::Secret;

/// Checks the body's secret against the client's shared secrets.
pub(super) async fn verify(
    provider: &Provider,
    client: &Client,
    secret: &Secret,
) -> Result<Result<(), Refusal>, crate::OAuthError> {
    shared_secret::verify(provider, client, secret, provider.clock.now()).await
}
