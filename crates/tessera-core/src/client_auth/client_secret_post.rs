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
