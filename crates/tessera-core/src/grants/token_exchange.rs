//! `urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693): a service trades a
//! user's token for a narrower one for a downstream API, acting for the user
//! (delegation, with `act`) or, where its policy allows, as the user (impersonation).

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{GrantContext, GrantHandler, Issue};
use crate::OAuthError;
use crate::catalog::parse_scope;
use crate::model::{GrantType, TokenExchangePolicy};
use crate::request::Params;
use crate::tokens::{access_token, id_token};

/// RFC 8693 §3: token type identifiers.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Exchanges a token for another (RFC 8693 §2).
pub struct TokenExchange;

/// Who a presented token speaks for.
struct Party {
    subject: String,
    /// The grant the token belongs to, if it was issued for a user's grant.
    grant_id: Option<String>,
    /// Its own `act`, for chains of delegation.
    act: Option<Value>,
}

#[async_trait]
impl GrantHandler for TokenExchange {
    fn grant_type(&self) -> GrantType {
        GrantType::TokenExchange
    }

    async fn handle(&self, cx: &GrantContext<'_>, params: &Params) -> Result<Issue, OAuthError> {
        let policy = cx
            .client
            .token_exchange
            .as_ref()
            .ok_or_else(|| OAuthError::unauthorized_client("the client has no token exchange policy"))?;
        if let Some(requested) = params.get("requested_token_type")
            && requested != ACCESS_TOKEN_TYPE
            && requested != JWT_TYPE
        {
            return Err(OAuthError::invalid_request("only access tokens are issued by token exchange"));
        }
        let subject =
            party(cx, params.require("subject_token")?, params.require("subject_token_type")?, Role::Subject)
                .await?;
        let act = match (params.get("actor_token"), params.get("actor_token_type")) {
            (Some(token), Some(token_type)) => {
                let actor = party(cx, token, token_type, Role::Actor).await?;
                Some(delegate(policy, &actor.subject, subject.act.clone())?)
            }
            (Some(_), None) => {
                return Err(OAuthError::invalid_request("actor_token_type is required with actor_token"));
            }
            (None, Some(_)) => {
                return Err(OAuthError::invalid_request("actor_token_type without actor_token"));
            }
            // Without an actor token, the calling client acts (delegation), or becomes
            // the user where the policy allows only impersonation.
            (None, None) if policy.delegation => {
                Some(delegate(policy, cx.client.client_id.as_str(), subject.act.clone())?)
            }
            (None, None) if policy.impersonation => None,
            (None, None) => {
                return Err(OAuthError::unauthorized_client(
                    "the policy allows neither delegation nor impersonation",
                ));
            }
        };
        let targets = targets(policy, params)?;
        let (scopes, audience) = scopes_and_audience(cx, &targets, params.get("scope"))?;
        Ok(Issue {
            subject: subject.subject,
            scopes,
            audience,
            user: None,
            act,
            issued_token_type: Some(ACCESS_TOKEN_TYPE),
            // The new token joins the subject token's grant: revoking that grant (a
            // reused refresh token, RFC 9700 §4.14.2) revokes what was exchanged from it.
            derived_grant: subject.grant_id,
        })
    }
}

/// Which token of the request is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Subject,
    Actor,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Subject => "subject",
            Self::Actor => "actor",
        }
    }
}

/// Reads a presented token: an access token or ID token this server issued, live.
/// A subject token must be addressed to the exchanging client: an ID token by its
/// `aud`, an access token by `aud` naming the client or an API the client fronts (one
/// whose scopes it may request). RFC 8693 §2.2.2: an invalid or unacceptable token is
/// `invalid_request`.
async fn party(
    cx: &GrantContext<'_>,
    token: &str,
    token_type: &str,
    role: Role,
) -> Result<Party, OAuthError> {
    let name = role.name();
    let invalid = || OAuthError::invalid_request(format!("the {name}_token is invalid, expired or revoked"));
    let elsewhere = || {
        tracing::info!(client_id = %cx.client.client_id, role = name, "token exchange refused: token addressed to someone else");
        OAuthError::invalid_request(format!("the {name}_token is not addressed to this client"))
    };
    let client_id = cx.client.client_id.as_str();
    match token_type {
        ACCESS_TOKEN_TYPE | JWT_TYPE => {
            let resolved = access_token::resolve(cx.provider, token, cx.now).await?.ok_or_else(invalid)?;
            if role == Role::Subject
                && !resolved.audience.iter().any(|aud| aud == client_id || fronts(cx, aud))
            {
                return Err(elsewhere());
            }
            Ok(Party {
                subject: resolved.subject,
                grant_id: access_token::grant_of(&resolved.jti).map(str::to_owned),
                act: resolved.act,
            })
        }
        ID_TOKEN_TYPE => {
            let claims = id_token::read_hint(cx.provider, token).await.map_err(|_| invalid())?;
            if claims.exp <= cx.now {
                return Err(invalid());
            }
            // OpenID Connect Core §2: an ID token is for its `aud` alone.
            if role == Role::Subject && claims.aud != client_id {
                return Err(elsewhere());
            }
            // The grant rides in `jti` as in access tokens; without it the token cannot
            // be tied to a grant, and so could not be revoked with it.
            let jti = claims.jti.as_deref().ok_or_else(invalid)?;
            let grant_id = access_token::grant_of(jti);
            if cx.provider.store.is_revoked(jti, grant_id).await? {
                return Err(invalid());
            }
            Ok(Party { subject: claims.sub, grant_id: grant_id.map(str::to_owned), act: None })
        }
        _ => Err(OAuthError::invalid_request(format!("unsupported {name}_token_type"))),
    }
}

/// Whether `audience` is an API the client fronts: one with a scope the client may request.
fn fronts(cx: &GrantContext<'_>, audience: &str) -> bool {
    cx.provider
        .catalog
        .api_resource(audience)
        .is_some_and(|api| api.scopes.iter().any(|scope| cx.client.allowed_scopes.contains(scope)))
}

/// The `act` claim naming `actor`, with earlier actors nested (RFC 8693 §4.1).
fn delegate(policy: &TokenExchangePolicy, actor: &str, prior: Option<Value>) -> Result<Value, OAuthError> {
    if !policy.delegation {
        return Err(OAuthError::unauthorized_client("the policy does not allow delegation"));
    }
    let mut act = json!({ "sub": actor });
    if let (Some(prior), Some(object)) = (prior, act.as_object_mut()) {
        object.insert("act".into(), prior);
    }
    Ok(act)
}

/// The APIs the new token is for: `audience` and `resource`, each in the policy;
/// the policy's audiences when neither is given.
fn targets(policy: &TokenExchangePolicy, params: &Params) -> Result<Vec<String>, OAuthError> {
    let mut targets: Vec<String> = params.get("audience").into_iter().map(str::to_owned).collect();
    targets.extend(params.resources().iter().cloned());
    if targets.is_empty() {
        return Ok(policy.audiences.clone());
    }
    if let Some(outside) = targets.iter().find(|target| !policy.audiences.contains(target)) {
        return Err(OAuthError::invalid_target(format!(
            "`{outside}` is not an audience this client may exchange for"
        )));
    }
    Ok(targets)
}

/// The new token's scopes and audience. The scopes are those requested (or, when none
/// are, every one the client may request of the targets), each within the client's
/// `allowed_scopes` and belonging to a target API; the subject token's own scopes do
/// not bound them, since the point of exchange is a token for another API (RFC 8693
/// §1). The audience is every target reached by a scope, and every target API that
/// has no scopes (an audience-only token).
fn scopes_and_audience(
    cx: &GrantContext<'_>,
    targets: &[String],
    requested: Option<&str>,
) -> Result<(Vec<String>, Vec<String>), OAuthError> {
    let mut apis = Vec::with_capacity(targets.len());
    for target in targets {
        let api = cx.provider.catalog.api_resource(target).ok_or_else(|| {
            OAuthError::invalid_target(format!("`{target}` is not an API resource of this server"))
        })?;
        apis.push(api);
    }
    let belongs = |scope: &str| apis.iter().any(|api| api.scopes.iter().any(|s| s == scope));
    let allowed = &cx.client.allowed_scopes;
    let scopes: Vec<String> = match requested {
        Some(text) => parse_scope(text)?,
        None => allowed.iter().filter(|scope| belongs(scope)).cloned().collect(),
    };
    if let Some(wider) = scopes.iter().find(|scope| !allowed.contains(scope)) {
        return Err(OAuthError::invalid_scope(format!("scope `{wider}` is not allowed for this client")));
    }
    if let Some(elsewhere) = scopes.iter().find(|scope| !belongs(scope)) {
        return Err(OAuthError::invalid_scope(format!(
            "scope `{elsewhere}` does not belong to the audience"
        )));
    }
    let audience: Vec<String> = apis
        .iter()
        .filter(|api| api.scopes.is_empty() || api.scopes.iter().any(|s| scopes.contains(s)))
        .map(|api| api.name.clone())
        .collect();
    if audience.is_empty() {
        return Err(OAuthError::invalid_scope("the client may request no scope of this audience"));
    }
    Ok((scopes, audience))
}
