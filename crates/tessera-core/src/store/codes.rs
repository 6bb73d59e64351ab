//! Authorization codes and what a token request presents to redeem one.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Consumed, StoreResult};
use crate::Timestamp;
use crate::secret::SecretHash;

/// What an authorization code stands for (RFC 6749 §4.1.2), bound to its client,
/// `redirect_uri` and PKCE challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingGrant {
    /// Every token issued from this code carries it: revoking it revokes them all.
    pub grant_id: String,
    /// The client the code was issued to (RFC 6749 §4.1.3).
    pub client_id: String,
    /// The user who authorized.
    pub subject: String,
    /// The `redirect_uri` sent to `/authorize`, if one was (RFC 6749 §4.1.3).
    pub redirect_uri: Option<String>,
    /// BASE64URL(SHA256(code_verifier)) (RFC 7636 §4.2, S256 only).
    pub code_challenge: String,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// RFC 8707 resource indicators of the request.
    pub resources: Vec<String>,
    /// Echoed in the ID token (OpenID Connect Core §3.1.2.1).
    pub nonce: Option<String>,
    /// When the user authenticated.
    pub auth_time: Timestamp,
    /// The session id for the ID token's `sid`.
    pub sid: String,
    /// RFC 9449 §10: the DPoP key the code is bound to.
    pub dpop_jkt: Option<String>,
    /// How the user authenticated (RFC 8176), for the ID token; empty in codes issued
    /// before second factors existed (a password).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The ID token's `acr`: the first requested level reached, else the strongest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

/// Authorization codes.
#[async_trait]
pub trait CodeStore: Send + Sync {
    /// Stores a code by the hash of its value.
    async fn put_code(
        &self,
        hash: &SecretHash,
        grant: &PendingGrant,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// Marks the code used and returns its grant in one step: of any number of racing
    /// redemptions exactly one sees `Fresh`; later ones see `Replayed`. An expired
    /// or unknown code is `Missing`.
    async fn consume_code(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Consumed<PendingGrant>>;
    /// [`Self::consume_code`] for a token request: in the same atomic step, a live,
    /// unused code is first matched against what the request presents
    /// ([`PendingGrant::mismatch`]); on a mismatch it is left unused (`Err`), so a
    /// wrong client, verifier, `redirect_uri` or DPoP key cannot burn the rightful
    /// client's code. A used code is `Replayed` whoever presents it.
    async fn redeem_code(
        &self,
        hash: &SecretHash,
        presented: &CodePresentation,
        now: Timestamp,
    ) -> StoreResult<Result<Consumed<PendingGrant>, CodeMismatch>>;
    /// The grant of a live code that is already used; `None` for an unused, expired
    /// or unknown one. Read only for the retry of a redemption whose commit was in
    /// doubt ([`StoreError::is_in_doubt`]), never on the normal path.
    async fn redeemed_code(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<Option<PendingGrant>>;
}

/// What a token request presents to redeem an authorization code.
#[derive(Debug, Clone)]
pub struct CodePresentation {
    /// The authenticated client.
    pub client_id: String,
    /// The request's `redirect_uri`, if it sent one.
    pub redirect_uri: Option<String>,
    /// The PKCE `code_verifier` (RFC 7636 §4.5).
    pub code_verifier: crate::secret::Secret,
    /// The thumbprint of the request's verified DPoP key, if it sent a proof.
    pub dpop_jkt: Option<String>,
}

/// Why a presentation does not redeem a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeMismatch {
    /// Issued to another client (RFC 6749 §4.1.3).
    Client,
    /// Not the `redirect_uri` sent to `/authorize` (RFC 6749 §4.1.3).
    RedirectUri,
    /// The verifier does not hash to the challenge (RFC 7636 §4.6).
    CodeVerifier,
    /// Bound to another DPoP key (RFC 9449 §10).
    DpopKey,
}

impl PendingGrant {
    /// Whether `presented` may redeem the code this grant stands for; every store
    /// calls this inside its atomic redemption, so the rules live here once.
    #[must_use]
    pub fn mismatch(&self, presented: &CodePresentation) -> Option<CodeMismatch> {
        if self.client_id != presented.client_id {
            return Some(CodeMismatch::Client);
        }
        if let Some(expected) = &self.redirect_uri
            && presented.redirect_uri.as_deref() != Some(expected.as_str())
        {
            return Some(CodeMismatch::RedirectUri);
        }
        if !crate::pkce::verify(presented.code_verifier.expose(), &self.code_challenge) {
            return Some(CodeMismatch::CodeVerifier);
        }
        if let Some(bound) = &self.dpop_jkt
            && presented.dpop_jkt.as_deref() != Some(bound.as_str())
        {
            return Some(CodeMismatch::DpopKey);
        }
        None
    }
}
