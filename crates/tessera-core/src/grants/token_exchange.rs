//! `urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693): a service trades a
//! user's token for a narrower one for a downstream API, acting for the user
//! (delegation, with `act`) or, where its policy allows, as the user (impersonation).

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{GrantContext, GrantHandler, Issue};
use crate::OAuthError;
use crate::catalog::parse_scope;
use crate::model::{GrantId, GrantType, TokenExchangePolicy};
use crate::request::Params;
use crate::tokens::access_token;

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
    grant_id: Option<GrantId>,
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
        let request = ExchangeRequest::parse(params)?;
        let subject = party(cx, request.subject.token, request.subject.token_type, Role::Subject).await?;
        let act = match request.actor {
            Some(presented) => {
                let actor = party(cx, presented.token, presented.token_type, Role::Actor).await?;
                Some(delegate(policy, &actor.subject, subject.act.clone())?)
            }
            // Without an actor token, the calling client acts (delegation), or becomes
            // the user where the policy allows only impersonation.
            None if policy.delegation => {
                Some(delegate(policy, cx.client.client_id.as_str(), subject.act.clone())?)
            }
            None if policy.impersonation => None,
            None => {
                return Err(OAuthError::unauthorized_client(
                    "the policy allows neither delegation nor impersonation",
                ));
            }
        };
        let targets = targets(policy, request.targets)?;
        let (scopes, audience) = scopes_and_audience(cx, &targets, request.scope)?;
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

/// RFC 8693 §2.1: the exchange request, parsed before any token is read.
struct ExchangeRequest<'p> {
    subject: PresentedToken<'p>,
    actor: Option<PresentedToken<'p>>,
    /// `audience` and `resource` (RFC 8707): the APIs the new token is for.
    targets: Vec<String>,
    scope: Option<&'p str>,
}

/// A token the request presents, with the type it claims (RFC 8693 §3).
struct PresentedToken<'p> {
    token: &'p str,
    token_type: &'p str,
}

impl<'p> ExchangeRequest<'p> {
    fn parse(params: &'p Params) -> Result<Self, OAuthError> {
        if let Some(requested) = params.get("requested_token_type")
            && requested != ACCESS_TOKEN_TYPE
            && requested != JWT_TYPE
        {
            return Err(OAuthError::invalid_request("only access tokens are issued by token exchange"));
        }
        let subject = PresentedToken {
            token: params.require("subject_token")?,
            token_type: params.require("subject_token_type")?,
        };
        let actor = match (params.get("actor_token"), params.get("actor_token_type")) {
            (Some(token), Some(token_type)) => Some(PresentedToken { token, token_type }),
            (Some(_), None) => {
                return Err(OAuthError::invalid_request("actor_token_type is required with actor_token"));
            }
            (None, Some(_)) => {
                return Err(OAuthError::invalid_request("actor_token_type without actor_token"));
            }
            (None, None) => None,
        };
        let mut targets: Vec<String> = params.get("audience").into_iter().map(str::to_owned).collect();
        targets.extend(params.resources().iter().cloned());
        Ok(Self { subject, actor, targets, scope: params.get("scope") })
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
            let resolved = cx.issued_tokens.access_token(token, cx.now).await?.ok_or_else(invalid)?;
            if role == Role::Subject
                && !resolved.audience.iter().any(|aud| aud == client_id || fronts(cx, aud))
            {
                return Err(elsewhere());
            }
            Ok(Party {
                subject: resolved.subject,
                grant_id: access_token::grant_of(&resolved.jti),
                act: resolved.act,
            })
        }
        ID_TOKEN_TYPE => {
            let claims = cx.issued_tokens.id_token(token).await.map_err(|_| invalid())?;
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
            if cx.store.is_revoked(jti, grant_id.as_ref()).await? {
                return Err(invalid());
            }
            Ok(Party { subject: claims.sub, grant_id, act: None })
        }
        _ => Err(OAuthError::invalid_request(format!("unsupported {name}_token_type"))),
    }
}

/// Whether `audience` is an API the client fronts: one with a scope the client may request.
fn fronts(cx: &GrantContext<'_>, audience: &str) -> bool {
    cx.catalog
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
fn targets(policy: &TokenExchangePolicy, targets: Vec<String>) -> Result<Vec<String>, OAuthError> {
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
        let api = cx.catalog.api_resource(target).ok_or_else(|| {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, TokenExchange};
    use crate::ErrorCode;
    use crate::grants::testing::{Bench, refused};
    use crate::model::{Client, TokenExchangePolicy};
    use crate::store::GrantStore;
    use crate::test_support::service_client;
    use crate::tokens::ResolvedToken;
    use crate::tokens::id_token::IdTokenClaims;

    /// A gateway fronting `api1` that may exchange for `api2`.
    fn gateway(delegation: bool, impersonation: bool) -> Client {
        Client {
            token_exchange: Some(TokenExchangePolicy {
                audiences: vec!["api2".into()],
                delegation,
                impersonation,
            }),
            ..service_client("gateway", &["api1.read", "api2.read"])
        }
    }

    /// Alice's access token for `api1`, of grant `grant-1`, perhaps already delegated.
    fn users_token(bench: &Bench, act: Option<serde_json::Value>) -> ResolvedToken {
        ResolvedToken {
            jti: "grant-1.abc".into(),
            client_id: "web".into(),
            subject: "alice".into(),
            scope: vec!["api1.read".into()],
            audience: vec!["api1".into()],
            issued_at: bench.now(),
            expires_at: bench.now() + 300,
            reference: None,
            act,
            cnf: None,
        }
    }

    fn exchange<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut params = vec![("subject_token", "alice-at"), ("subject_token_type", ACCESS_TOKEN_TYPE)];
        params.extend_from_slice(extra);
        params
    }

    #[tokio::test]
    async fn a_gateway_acting_for_the_user_gets_a_token_for_the_downstream_api_naming_itself_in_act() {
        let bench = Bench::new();
        bench.issued.access_token("alice-at", users_token(&bench, None));
        let issue = bench.run(&TokenExchange, &gateway(true, false), &exchange(&[]), None).await.unwrap();
        assert_eq!(issue.subject, "alice");
        assert_eq!(issue.audience, ["api2"]);
        assert_eq!(issue.scopes, ["api2.read"]);
        assert_eq!(issue.act, Some(json!({ "sub": "gateway" })));
        assert_eq!(issue.derived_grant, Some("grant-1".into()), "revoking the user's grant revokes it too");
        assert_eq!(issue.issued_token_type, Some(ACCESS_TOKEN_TYPE));
    }

    #[tokio::test]
    async fn a_chain_of_delegation_nests_the_earlier_actor() {
        let bench = Bench::new();
        bench.issued.access_token("alice-at", users_token(&bench, Some(json!({ "sub": "web" }))));
        let issue = bench.run(&TokenExchange, &gateway(true, false), &exchange(&[]), None).await.unwrap();
        assert_eq!(issue.act, Some(json!({ "sub": "gateway", "act": { "sub": "web" } })));
    }

    #[tokio::test]
    async fn impersonation_without_delegation_issues_no_act() {
        let bench = Bench::new();
        bench.issued.access_token("alice-at", users_token(&bench, None));
        let issue = bench.run(&TokenExchange, &gateway(false, true), &exchange(&[]), None).await.unwrap();
        assert_eq!(issue.act, None);
    }

    #[tokio::test]
    async fn a_client_without_a_policy_or_with_an_empty_one_is_unauthorized_client() {
        let bench = Bench::new();
        bench.issued.access_token("alice-at", users_token(&bench, None));
        let no_policy = service_client("gateway", &["api2.read"]);
        assert_eq!(
            refused(bench.run(&TokenExchange, &no_policy, &exchange(&[]), None).await),
            ErrorCode::UnauthorizedClient
        );
        let empty = gateway(false, false);
        assert_eq!(
            refused(bench.run(&TokenExchange, &empty, &exchange(&[]), None).await),
            ErrorCode::UnauthorizedClient
        );
    }

    #[tokio::test]
    async fn a_subject_token_addressed_elsewhere_unknown_or_of_an_unknown_type_is_invalid_request() {
        let bench = Bench::new();
        let mut for_api2 = users_token(&bench, None);
        for_api2.audience = vec!["api3".into()];
        bench.issued.access_token("elsewhere", for_api2);
        let client = gateway(true, false);
        let cases = [
            vec![("subject_token", "elsewhere"), ("subject_token_type", ACCESS_TOKEN_TYPE)],
            vec![("subject_token", "unknown"), ("subject_token_type", ACCESS_TOKEN_TYPE)],
            vec![("subject_token", "alice-at"), ("subject_token_type", "urn:example:saml")],
            vec![("subject_token", "alice-at")],
            exchange(&[("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token")]),
            exchange(&[("actor_token", "alice-at")]),
            exchange(&[("actor_token_type", ACCESS_TOKEN_TYPE)]),
        ];
        for params in cases {
            let result = bench.run(&TokenExchange, &client, &params, None).await;
            assert_eq!(refused(result), ErrorCode::InvalidRequest, "{params:?}");
        }
    }

    #[tokio::test]
    async fn an_audience_outside_the_policy_is_invalid_target_and_a_scope_outside_the_client_invalid_scope() {
        let bench = Bench::new();
        bench.issued.access_token("alice-at", users_token(&bench, None));
        let client = gateway(true, false);
        let outside = bench.run(&TokenExchange, &client, &exchange(&[("audience", "api1")]), None).await;
        assert_eq!(refused(outside), ErrorCode::InvalidTarget);
        let wider = bench.run(&TokenExchange, &client, &exchange(&[("scope", "api2.write")]), None).await;
        assert_eq!(refused(wider), ErrorCode::InvalidScope);
        let not_of_target =
            bench.run(&TokenExchange, &client, &exchange(&[("scope", "api1.read")]), None).await;
        assert_eq!(refused(not_of_target), ErrorCode::InvalidScope);
    }

    #[tokio::test]
    async fn an_id_token_of_a_revoked_grant_or_expired_is_invalid_request() {
        let bench = Bench::new();
        let claims = IdTokenClaims {
            iss: "https://issuer.example".into(),
            sub: "alice".into(),
            aud: "gateway".into(),
            exp: bench.now() + 300,
            iat: bench.now(),
            auth_time: bench.now(),
            nonce: None,
            at_hash: None,
            sid: None,
            jti: Some("grant-1.xyz".into()),
            amr: vec![],
            acr: None,
        };
        bench.issued.id_token("alice-id", claims.clone());
        bench.issued.id_token("old-id", IdTokenClaims { exp: bench.now() - 1, ..claims });
        let client = gateway(true, false);
        let with = |token| vec![("subject_token", token), ("subject_token_type", ID_TOKEN_TYPE)];
        assert_eq!(
            refused(bench.run(&TokenExchange, &client, &with("old-id"), None).await),
            ErrorCode::InvalidRequest
        );
        let issue = bench.run(&TokenExchange, &client, &with("alice-id"), None).await.unwrap();
        assert_eq!(issue.derived_grant, Some("grant-1".into()));
        bench.store.revoke_grant(&"grant-1".into(), bench.now(), bench.now() + 300).await.unwrap();
        assert_eq!(
            refused(bench.run(&TokenExchange, &client, &with("alice-id"), None).await),
            ErrorCode::InvalidRequest
        );
    }
}
