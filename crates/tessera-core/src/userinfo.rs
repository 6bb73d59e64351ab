//! The UserInfo endpoint (OpenID Connect Core §5.3): claims about the user, for a
//! bearer access token that carries `openid`.

use serde_json::{Map, Value};

use crate::tokens::access_token;
use crate::{OAuthError, Provider};

/// The claims the token's identity scopes release, `sub` always first.
///
/// # Errors
/// `invalid_token` for a missing, unknown, expired or revoked token (RFC 6750 §3.1);
/// `insufficient_scope` without `openid`.
pub async fn userinfo(provider: &Provider, token: Option<&str>) -> Result<Value, OAuthError> {
    let token = token.ok_or_else(|| OAuthError::invalid_token("missing access token"))?;
    let now = provider.clock.now();
    let resolved = access_token::resolve(provider, token, now)
        .await?
        .ok_or_else(|| OAuthError::invalid_token("the access token is invalid, expired or revoked"))?;
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
