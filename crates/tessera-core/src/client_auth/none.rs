//! `none`: a public client identifies itself by `client_id` alone (RFC 6749 §2.1);
//! its grants must carry their own proof (PKCE, device code).

use super::Refusal;
use crate::model::Client;

/// A public client needs no secret; the caller already checked it is registered so.
pub(super) fn verify(client: &Client) -> Result<(), Refusal> {
    if client.is_public() { Ok(()) } else { Err("confidential client sent no credentials".into()) }
}
