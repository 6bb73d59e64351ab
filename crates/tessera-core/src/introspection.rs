//! Token introspection (RFC 7662), for APIs (with their secret) and clients.

use serde_json::{Map, Value, json};
use tracing::info;

use crate::client_auth::{self, Credentials, Endpoint};
use crate::model::ClientId;
use crate::request::Params;
use crate::secret::SecretHash;
use crate::store::Consumed;
use crate::tokens::{ResolvedToken, access_token};
use crate::{OAuthError, Provider};

/// Who asks: an API resource, or a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Api(String),
    Client(ClientId),
}

impl Caller {
    /// RFC 7662 §4: a caller learns only about tokens meant for it, so one API
    /// cannot probe another's tokens. An API sees tokens whose `aud` names it;
    /// a client sees its own tokens.
    fn may_see(&self, token: &ResolvedToken) -> bool {
        match self {
            Self::Api(name) => token.audience.iter().any(|aud| aud == name),
            Self::Client(client_id) => token.client_id == client_id.as_str(),
        }
    }
}

/// Authenticates the caller: an API resource by name and secret (Basic or body),
/// otherwise a client by its registered method.
///
/// # Errors
/// `invalid_client` when the credentials do not check out.
pub async fn authenticate_caller(
    provider: &Provider,
    credentials: &Credentials,
    endpoint: Endpoint<'_>,
) -> Result<Caller, OAuthError> {
    if let Credentials::Basic { client_id, secret } | Credentials::Post { client_id, secret } = credentials
        && let Some(api) = provider.catalog.api_resource(client_id)
    {
        let stored: Vec<_> = api.secrets.iter().collect();
        if crate::secret_checks::verify(
            &provider.secret_checks,
            &provider.password_checks,
            &format!("api:{}", api.name),
            &stored,
            secret,
        )
        .await?
        {
            return Ok(Caller::Api(api.name.clone()));
        }
        info!(api = %api.name, "introspection caller authentication failed: wrong API secret");
        return Err(OAuthError::invalid_client("client authentication failed"));
    }
    let authenticated = client_auth::authenticate(provider, credentials, endpoint).await?;
    Ok(Caller::Client(authenticated.client.client_id.clone()))
}

/// The introspection response: `{"active": false}` for anything not live or not the
/// caller's to see (RFC 7662 §2.2).
///
/// # Errors
/// `invalid_request` without `token`; `server_error` when keys or store fail.
pub async fn introspect(provider: &Provider, caller: &Caller, params: &Params) -> Result<Value, OAuthError> {
    let token = params.require("token")?;
    let now = provider.clock.now();
    let Some(resolved) = access_token::resolve(&provider.token_issuer(), token, now).await? else {
        return refresh_token(provider, caller, token, now).await;
    };
    if !caller.may_see(&resolved) {
        return Ok(json!({ "active": false }));
    }
    let mut response = Map::new();
    response.insert("active".into(), true.into());
    if !resolved.scope.is_empty() {
        response.insert("scope".into(), resolved.scope.join(" ").into());
    }
    response.insert("client_id".into(), resolved.client_id.into());
    response.insert("sub".into(), resolved.subject.into());
    let aud: Value = match resolved.audience.as_slice() {
        [one] => one.clone().into(),
        many => many.to_vec().into(),
    };
    response.insert("aud".into(), aud);
    response.insert("iss".into(), provider.settings.issuer.clone().into());
    response.insert("exp".into(), resolved.expires_at.into());
    response.insert("iat".into(), resolved.issued_at.into());
    response.insert("jti".into(), resolved.jti.into());
    let bound = resolved.cnf.as_ref().is_some_and(|cnf| cnf.jkt.is_some());
    response.insert("token_type".into(), if bound { "DPoP" } else { "Bearer" }.into());
    if let Some(act) = resolved.act {
        response.insert("act".into(), act);
    }
    // RFC 9449 §6.2: the resource server learns the binding from `cnf`.
    if let Some(cnf) = resolved.cnf {
        response.insert("cnf".into(), serde_json::to_value(cnf).map_err(OAuthError::server_error)?);
    }
    Ok(Value::Object(response))
}

/// RFC 7662 §2.1: a client may also introspect its own refresh tokens.
async fn refresh_token(
    provider: &Provider,
    caller: &Caller,
    token: &str,
    now: crate::Timestamp,
) -> Result<Value, OAuthError> {
    let inactive = json!({ "active": false });
    let Consumed::Fresh(record) = provider.store.refresh_token(&SecretHash::of(token)).await? else {
        return Ok(inactive);
    };
    let expires_at = record.idle_expires_at.map_or(record.expires_at, |idle| idle.min(record.expires_at));
    let own = matches!(caller, Caller::Client(client_id) if *client_id == record.client_id);
    if !own || expires_at <= now {
        return Ok(inactive);
    }
    Ok(json!({
        "active": true,
        "scope": record.scopes.join(" "),
        "client_id": record.client_id,
        "sub": record.subject,
        "iss": provider.settings.issuer,
        "iat": record.issued_at,
        "exp": expires_at,
        "token_type": "refresh_token",
    }))
}
