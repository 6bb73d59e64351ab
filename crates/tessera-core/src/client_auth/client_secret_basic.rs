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
