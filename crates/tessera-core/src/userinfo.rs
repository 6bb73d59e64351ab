//! The UserInfo endpoint (OpenID Connect Core §5.3): claims about the user, for a
//! bearer access token that carries `openid`.

use serde_json::{Map, Value};

use crate::sender::dpop::DpopProof;
use crate::tokens::access_token;
use crate::{OAuthError, Provider};

/// The description of the error for a request that presented no token at all (RFC
/// 6750 §3.1: its challenge carries no error code).
pub const MISSING_TOKEN: &str = "missing access token";

/// An access token as presented to a protected resource.
#[derive(Debug)]
pub struct Presented<'a> {
    pub token: &'a str,
    /// `Authorization: DPoP` (with its proof) rather than `Bearer` (RFC 9449 §7.1).
    pub dpop: Option<&'a DpopProof>,
    /// The TLS client certificate of the connection (RFC 8705 §3), if any.
    pub certificate: Option<&'a crate::model::ClientCertificate>,
}

/// The claims the token's identity scopes release, `sub` always first.
///
/// # Errors
/// `invalid_token` for a missing, unknown, expired or revoked token (RFC 6750 §3.1),
/// or a DPoP-bound token presented without its key; `invalid_dpop_proof` for a bad
/// proof; `insufficient_scope` without `openid`.
pub async fn userinfo(provider: &Provider, presented: Option<Presented<'_>>) -> Result<Value, OAuthError> {
    let resolved = resource_token(provider, presented).await?;
    if !resolved.scope.iter().any(|s| s == "openid") {
        return Err(OAuthError::insufficient_scope("the access token lacks the openid scope"));
    }
    // A client-credentials token has no user behind it.
    let user = provider
        .store
        .user_by_subject(&resolved.subject)
        .await?
        .ok_or_else(|| OAuthError::invalid_token("no user behind this access token"))?;
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::String(user.subject.clone()));
    for name in provider.catalog.claims_for(&resolved.scope) {
        if name == "sub" {
            continue;
        }
        if name == "preferred_username" && !user.claims.contains_key(name) {
            claims.insert(name.into(), Value::String(user.username.clone()));
        } else if let Some(value) = user.claims.get(name) {
            claims.insert(name.into(), value.clone());
        }
    }
    Ok(Value::Object(claims))
}

/// A live access token of this server as a resource it serves receives it: resolved
/// (JWT or reference, not expired or revoked), with its proof-of-possession checked
/// (RFC 9449 §7, RFC 8705 §3).
///
/// # Errors
/// `invalid_token` for a missing, unknown, expired or revoked token, or a bound token
/// without its key or certificate; `invalid_dpop_proof` for a bad proof.
pub async fn resource_token(
    provider: &Provider,
    presented: Option<Presented<'_>>,
) -> Result<crate::tokens::access_token::ResolvedToken, OAuthError> {
    let presented = presented.ok_or_else(|| OAuthError::invalid_token(MISSING_TOKEN))?;
    let token = presented.token;
    let now = provider.clock.now();
    let resolved = access_token::resolve(&provider.token_issuer(), token, now)
        .await?
        .ok_or_else(|| OAuthError::invalid_token("the access token is invalid, expired or revoked"))?;
    let bound = resolved.cnf.as_ref().and_then(|cnf| cnf.jkt.as_deref());
    match (presented.dpop, bound) {
        (None, None) => {}
        // RFC 9449 §7.2: a bound token is worthless without a proof from its key.
        (None, Some(_)) => {
            return Err(OAuthError::invalid_token("the token is DPoP-bound: use the DPoP scheme"));
        }
        (Some(_), None) => return Err(OAuthError::invalid_token("the token is not DPoP-bound")),
        (Some(proof), Some(bound)) => {
            let jkt = provider.verify_dpop(proof, Some(token), now).await?;
            if jkt != bound {
                return Err(OAuthError::invalid_token("the proof is from another key than the token's"));
            }
        }
    }
    // RFC 8705 §3: a certificate-bound token only over a connection with that certificate.
    if let Some(bound) = resolved.cnf.as_ref().and_then(|cnf| cnf.x5t_s256.as_deref()) {
        let presented = presented.certificate.map(|certificate| certificate.thumbprint.as_str());
        if !presented.is_some_and(|thumbprint| crate::secret::constant_time_eq(thumbprint, bound)) {
            return Err(OAuthError::invalid_token(
                "the token is bound to a client certificate not presented",
            ));
        }
    }
    Ok(resolved)
}
