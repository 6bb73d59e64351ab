//! Grant types: one module each, behind one trait. The token endpoint does what they
//! share (authenticate, check the grant is allowed, mint); a grant decides what to issue.

mod authorization_code;
mod ciba;
mod client_credentials;
mod device_code;
mod polling;
pub use polling::RedemptionsInDoubt;
mod refresh_token;
pub mod registry;
pub use refresh_token::{CodesInDoubt, IN_DOUBT_WINDOW, InDoubtRotations, RotationsInDoubt};
#[cfg(test)]
pub(crate) mod testing;
mod token_exchange;

use async_trait::async_trait;

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::model::{Client, GrantId, GrantType};
use crate::random::Rng;
use crate::request::Params;
use crate::settings::TokenSettings;
use crate::store::GrantStores;
use crate::tokens::ResolvedToken;
use crate::tokens::id_token::IdTokenClaims;
use crate::{OAuthError, Timestamp};

/// What a grant handler is handed for one request: the request's facts and the parts
/// of the provider a grant may use. Not the `Provider`: a grant cannot reach users,
/// sessions, clients, keys, factors or the configuration beyond token lifetimes.
pub struct GrantContext<'a> {
    /// The authenticated client.
    pub client: &'a Client,
    pub now: Timestamp,
    /// The thumbprint of the request's verified DPoP key, if it sent a proof.
    pub dpop_jkt: Option<&'a str>,
    /// The thumbprint of the TLS client certificate the request came with, if any.
    pub certificate_thumbprint: Option<&'a str>,
    /// Codes, refresh tokens, grants, single-use marks, decoupled requests and polls.
    /// An `Arc` because a consumption in doubt is noted in the background.
    pub store: &'a Arc<dyn GrantStores>,
    /// Scopes and APIs: what may be granted.
    pub catalog: &'a Catalog,
    /// Token lifetimes (a first refresh token's expiry, how long a revocation is kept).
    pub tokens: &'a TokenSettings,
    /// New grant identifiers.
    pub rng: &'a Rng,
    /// Reads tokens this server issued, for token exchange's subject and actor tokens.
    pub issued_tokens: &'a dyn IssuedTokens,
}

/// Reads tokens this server issued (the provider, with its keys and store).
#[async_trait]
pub trait IssuedTokens: Send + Sync {
    /// The live access token behind `token` (a JWT or a reference token), if any.
    async fn access_token(&self, token: &str, now: Timestamp) -> Result<Option<ResolvedToken>, OAuthError>;
    /// An ID token of this issuer with a valid signature, expired or not.
    async fn id_token(&self, token: &str) -> Result<IdTokenClaims, OAuthError>;
}

/// Revokes everything issued from a grant (RFC 6749 §4.1.2, RFC 9700 §4.14.2): its
/// refresh tokens and codes at once, and its access tokens, which carry their grant,
/// for as long as any of them can still be valid.
///
/// # Errors
/// When the store fails.
pub(crate) async fn revoke_grant(cx: &GrantContext<'_>, grant_id: &GrantId) -> Result<(), OAuthError> {
    revoke_grant_in(cx.store.as_ref(), cx.tokens, grant_id, cx.now).await
}

/// [`revoke_grant`] outside a grant (revocation of a refresh token, RFC 7009 §2.1).
///
/// # Errors
/// When the store fails.
pub(crate) async fn revoke_grant_in(
    store: &dyn crate::store::GrantStore,
    tokens: &TokenSettings,
    grant_id: &GrantId,
    now: Timestamp,
) -> Result<(), OAuthError> {
    let remember_until = now + tokens.longest_access_token_lifetime;
    Ok(store.revoke_grant(grant_id, now, remember_until).await?)
}

/// What to issue: the token endpoint mints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// `sub`: the user, or the client itself for client credentials (RFC 9068 §2.2).
    pub subject: String,
    /// The access token's scopes.
    pub scopes: Vec<String>,
    pub audience: Vec<String>,
    /// Present when a user granted the access.
    pub user: Option<UserGrant>,
    /// The `act` claim of a delegated token (RFC 8693 §4.1).
    pub act: Option<serde_json::Value>,
    /// `issued_token_type` of the response (RFC 8693 §2.2.1), for token exchange.
    pub issued_token_type: Option<&'static str>,
    /// The grant a token made by exchange joins (its subject token's), so revoking
    /// that grant revokes it too (RFC 9700 §4.14.2); `None` elsewhere.
    pub derived_grant: Option<GrantId>,
}

impl Issue {
    /// What the access token says: the grant it belongs to is the user's, or for a
    /// token made by exchange, its subject token's.
    #[must_use]
    pub fn access_token_content(&self) -> crate::tokens::access_token::AccessTokenContent<'_> {
        crate::tokens::access_token::AccessTokenContent {
            subject: &self.subject,
            scopes: &self.scopes,
            audience: &self.audience,
            act: self.act.as_ref(),
            grant_id: self.user.as_ref().map(|user| &user.grant_id).or(self.derived_grant.as_ref()),
        }
    }
}

/// A grant by a signed-in user: what ties its tokens together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGrant {
    /// Every token of the grant is recorded under it, so reuse can revoke them all.
    pub grant_id: GrantId,
    pub auth_time: Timestamp,
    pub sid: String,
    pub nonce: Option<String>,
    pub refresh: RefreshPlan,
    /// How the user authenticated (RFC 8176); empty: a password, before factors existed.
    pub amr: Vec<String>,
    /// The `acr` the ID token says; `None`: the level `amr` reached.
    pub acr: Option<String>,
}

/// What happens to refresh tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshPlan {
    /// None issued.
    None,
    /// The first of a grant: the token endpoint stores this record under a new value.
    Start(Box<crate::store::RefreshRecord>),
    /// Rotated by the grant itself (or kept, for a client without rotation): hand out
    /// this value.
    Rotated(crate::secret::Secret),
}

/// One grant type.
#[async_trait]
pub trait GrantHandler: Send + Sync {
    /// The `grant_type` it handles.
    fn grant_type(&self) -> GrantType;
    /// Checks the grant's own parameters and decides what to issue.
    async fn handle(&self, cx: &GrantContext<'_>, params: &Params) -> Result<Issue, OAuthError>;
}

/// The facts a user grant's first refresh token records.
pub(crate) struct GrantFacts<'a> {
    pub grant_id: &'a GrantId,
    pub subject: &'a str,
    pub scopes: &'a [String],
    pub resources: &'a [String],
    pub auth_time: Timestamp,
    pub sid: &'a str,
    pub amr: &'a [String],
    pub acr: Option<&'a str>,
}

/// The first refresh token of a user grant: when `offline_access` was granted to a
/// client allowed to have one, with the client's absolute or sliding lifetime.
pub(crate) fn first_refresh(cx: &GrantContext<'_>, facts: &GrantFacts<'_>) -> RefreshPlan {
    let offline = facts.scopes.iter().any(|s| s == crate::catalog::OFFLINE_ACCESS);
    if !offline || !cx.client.allow_offline_access {
        return RefreshPlan::None;
    }
    let expires_at = cx.now + cx.tokens.refresh_token_lifetime;
    let sliding = cx.client.refresh_token_expiration == crate::settings::RefreshExpiration::Sliding;
    let idle_expires_at =
        sliding.then(|| (cx.now + cx.client.sliding_refresh_token_lifetime).min(expires_at));
    RefreshPlan::Start(Box::new(crate::store::RefreshRecord {
        grant_id: facts.grant_id.clone(),
        client_id: cx.client.client_id.clone(),
        subject: facts.subject.to_owned(),
        scopes: facts.scopes.to_vec(),
        resources: facts.resources.to_vec(),
        auth_time: facts.auth_time,
        sid: facts.sid.to_owned(),
        issued_at: cx.now,
        expires_at,
        idle_expires_at,
        dpop_jkt: None,
        x5t_s256: None,
        amr: facts.amr.to_vec(),
        acr: facts.acr.map(str::to_owned),
    }))
}
