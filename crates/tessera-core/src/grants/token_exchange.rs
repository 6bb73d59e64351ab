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
    /// The scopes it carries (none for an ID token).
    scopes: Vec<String>,
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
            party(cx, params.require("subject_token")?, params.require("subject_token_type")?, "subject")
                .await?;
        let act = match (params.get("actor_token"), params.get("actor_token_type")) {
            (Some(token), Some(token_type)) => {
                let actor = party(cx, token, token_type, "actor").await?;
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
        let scopes = narrowed_scopes(cx, &subject, &targets, params.get("scope"))?;
        // RFC 8707 §2: the token is for the targets its scopes reach.
        let catalog = &cx.provider.catalog;
        let audience = targets
            .into_iter()
            .filter(|target| {
                catalog.api_resource(target).is_some_and(|api| api.scopes.iter().any(|s| scopes.contains(s)))
            })
            .collect();
        Ok(Issue {
            subject: subject.subject,
            scopes,
            audience,
            user: None,
            act,
            issued_token_type: Some(ACCESS_TOKEN_TYPE),
        })
    }
}

/// Reads a presented token: an access token or ID token this server issued, live.
/// RFC 8693 §2.2.2: an invalid token is `invalid_request`.
async fn party(
    cx: &GrantContext<'_>,
    token: &str,
    token_type: &str,
    role: &str,
) -> Result<Party, OAuthError> {
    let invalid = || OAuthError::invalid_request(format!("the {role}_token is invalid, expired or revoked"));
    match token_type {
        ACCESS_TOKEN_TYPE | JWT_TYPE => {
            let resolved = access_token::resolve(cx.provider, token, cx.now).await?.ok_or_else(invalid)?;
            Ok(Party { subject: resolved.subject, scopes: resolved.scope, act: resolved.act })
        }
        ID_TOKEN_TYPE => {
            let claims = id_token::read_hint(cx.provider, token).await.map_err(|_| invalid())?;
            if claims.exp <= cx.now {
                return Err(invalid());
            }
            Ok(Party { subject: claims.sub, scopes: Vec::new(), act: None })
        }
        _ => Err(OAuthError::invalid_request(format!("unsupported {role}_token_type"))),
    }
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

/// The new token's scopes: requested (or all it may keep), never more than the
/// subject token had, and only scopes of the target APIs.
fn narrowed_scopes(
    cx: &GrantContext<'_>,
    subject: &Party,
    targets: &[String],
    requested: Option<&str>,
) -> Result<Vec<String>, OAuthError> {
    let reaches = |scope: &str| {
        targets.iter().any(|target| {
            cx.provider.catalog.api_resource(target).is_some_and(|api| api.scopes.iter().any(|s| s == scope))
        })
    };
    // An ID token carries no API scope: the client's own allowance bounds it.
    let ceiling: &[String] =
        if subject.scopes.is_empty() { &cx.client.allowed_scopes } else { &subject.scopes };
    let scopes: Vec<String> = match requested {
        Some(text) => parse_scope(text)?,
        None => ceiling.iter().filter(|scope| reaches(scope)).cloned().collect(),
    };
    if let Some(wider) = scopes.iter().find(|scope| !ceiling.contains(scope)) {
        return Err(OAuthError::invalid_scope(format!("scope `{wider}` is wider than the subject token")));
    }
    if let Some(elsewhere) = scopes.iter().find(|scope| !reaches(scope)) {
        return Err(OAuthError::invalid_scope(format!(
            "scope `{elsewhere}` does not belong to the audience"
        )));
    }
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope("the subject token has no scope for this audience"));
    }
    Ok(scopes)
}
