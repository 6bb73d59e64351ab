//! Authorization codes and what a token request presents to redeem one.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Consumed, StoreResult};
use crate::Timestamp;
use crate::model::{ClientId, GrantId};
use crate::secret::SecretHash;

/// What an authorization code stands for (RFC 6749 §4.1.2), bound to its client,
/// `redirect_uri` and PKCE challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingGrant {
    /// Every token issued from this code carries it: revoking it revokes them all.
    pub grant_id: GrantId,
    /// The client the code was issued to (RFC 6749 §4.1.3).
    pub client_id: ClientId,
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
    pub client_id: ClientId,
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

impl CodePresentation {
    /// The fields a stored [`PendingGrant`] must hold, with exactly these values, for
    /// this presentation to redeem it: a grant whose JSON contains this object (as
    /// PostgreSQL's `@>` tests) has no [`PendingGrant::mismatch`] with it, so a store
    /// may mark the code used in the statement that finds it. A grant that does not
    /// contain it may still match (one sent without a `redirect_uri`): the store then
    /// takes the row and asks `mismatch`.
    #[must_use]
    pub fn fields_to_match(&self) -> serde_json::Value {
        serde_json::json!({
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "code_challenge": crate::pkce::s256(self.code_verifier.expose()),
            "dpop_jkt": self.dpop_jkt,
        })
    }
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

#[cfg(test)]
mod tests {
    use super::{CodeMismatch, CodePresentation, PendingGrant};
    use crate::secret::Secret;
    use crate::store::contains;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn grant(redirect_uri: Option<&str>, dpop_jkt: Option<&str>) -> PendingGrant {
        PendingGrant {
            grant_id: "g".into(),
            client_id: "web".into(),
            subject: "alice".into(),
            redirect_uri: redirect_uri.map(Into::into),
            code_challenge: crate::pkce::s256(VERIFIER),
            scopes: vec!["openid".into()],
            resources: Vec::new(),
            nonce: None,
            auth_time: 1,
            sid: "s".into(),
            dpop_jkt: dpop_jkt.map(Into::into),
            amr: Vec::new(),
            acr: None,
        }
    }

    fn presentation(
        client: &str,
        redirect_uri: Option<&str>,
        verifier: &str,
        jkt: Option<&str>,
    ) -> CodePresentation {
        CodePresentation {
            client_id: client.into(),
            redirect_uri: redirect_uri.map(Into::into),
            code_verifier: Secret::new(verifier),
            dpop_jkt: jkt.map(Into::into),
        }
    }

    /// The one-statement redemption on PostgreSQL marks a code used when its grant
    /// contains the presentation's fields: that must never let through what
    /// `mismatch` refuses. Every combination of the four bindings, matching or not.
    #[test]
    fn a_grant_that_contains_the_presented_fields_never_mismatches() {
        let grants = [
            grant(Some("https://a/cb"), None),
            grant(None, None),
            grant(Some("https://a/cb"), Some("jkt-1")),
            grant(None, Some("jkt-1")),
        ];
        let mut contained = 0;
        for grant in &grants {
            let document = serde_json::to_value(grant).unwrap();
            for client in ["web", "other"] {
                for redirect_uri in [None, Some("https://a/cb"), Some("https://b/cb")] {
                    for verifier in [VERIFIER, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX"] {
                        for jkt in [None, Some("jkt-1"), Some("jkt-2")] {
                            let presented = presentation(client, redirect_uri, verifier, jkt);
                            if contains(&document, &presented.fields_to_match()) {
                                contained += 1;
                                assert_eq!(grant.mismatch(&presented), None, "{grant:?} {presented:?}");
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(contained, 4, "each grant is redeemed in one statement by its own presentation");
    }

    #[test]
    fn a_grant_sent_without_a_redirect_uri_is_left_to_the_full_check() {
        let grant = grant(None, None);
        let presented = presentation("web", Some("https://a/cb"), VERIFIER, None);
        assert!(!contains(&serde_json::to_value(&grant).unwrap(), &presented.fields_to_match()));
        assert_eq!(grant.mismatch(&presented), None, "still redeemable, by the slower path");
        let wrong = presentation("web", None, VERIFIER, Some("jkt-2"));
        assert_eq!(grant.mismatch(&wrong), None, "an unbound code takes any DPoP key");
        let bound = self::grant(None, Some("jkt-1"));
        assert_eq!(bound.mismatch(&wrong), Some(CodeMismatch::DpopKey));
    }
}
