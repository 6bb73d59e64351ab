//! Client-Initiated Backchannel Authentication (OpenID Connect CIBA Core 1.0): a
//! confidential client asks for a user's approval, which the user gives on the
//! `/approvals` page of their own device (or an operator's app, told by webhook).

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use tracing::{info, warn};

use crate::decoupled;
use crate::model::{CibaDeliveryMode, Client, Decision, GrantType, PendingAuthorization, PingTarget};
use crate::notify::Notifier;
use crate::request::Params;
use crate::store::{CibaRequests, CibaStore as _, DecoupledRequests, Session};
use crate::tokens::id_token;
use crate::{OAuthError, Provider};

/// Lifetime of a request when the client asks for none.
pub const DEFAULT_EXPIRY: i64 = 300;
/// The longest `requested_expiry` granted.
pub const MAX_EXPIRY: i64 = 1800;
/// Minimum polling interval (CIBA Core §7.3).
pub const POLL_INTERVAL: i64 = crate::model::CIBA_POLL_INTERVAL;
const MAX_BINDING_MESSAGE: usize = 100;

/// The successful response (CIBA Core §7.3).
#[derive(Debug, Serialize)]
pub struct BackchannelResponse {
    pub auth_req_id: String,
    pub expires_in: i64,
    pub interval: i64,
}

pub use crate::model::ciba_request_id as request_id;

/// Handles an authentication request (CIBA Core §7.1) from an authenticated client.
///
/// # Errors
/// `unauthorized_client`, `invalid_request`, `invalid_scope`, `unknown_user_id`,
/// `invalid_binding_message` (CIBA Core §13).
pub async fn authentication_request(
    provider: &Provider,
    client: &Client,
    params: &Params,
) -> Result<BackchannelResponse, OAuthError> {
    if !client.allows_grant(GrantType::Ciba) || client.is_public() {
        return Err(OAuthError::unauthorized_client("client may not use CIBA"));
    }
    let scope = params.require("scope")?;
    let scopes = provider.catalog.grant_user_access(client, Some(scope), params.resources())?.scopes;
    if !scopes.iter().any(|s| s == "openid") {
        return Err(OAuthError::invalid_scope("CIBA requests need the openid scope"));
    }
    let user = hinted_user(provider, params).await?;
    // CIBA Core §7.1 `acr_values`: at least one must be a level this server reaches.
    let acr_values: Vec<String> = params
        .get("acr_values")
        .map(|v| v.split(' ').filter(|v| !v.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    if !acr_values.is_empty() && !acr_values.iter().any(|v| crate::mfa::Level::from_acr(v).is_some()) {
        return Err(OAuthError::invalid_request("none of the acr_values is supported"));
    }
    let binding_message = params.get("binding_message").map(str::to_owned);
    if binding_message
        .as_ref()
        .is_some_and(|m| m.chars().count() > MAX_BINDING_MESSAGE || m.chars().any(char::is_control))
    {
        return Err(OAuthError::new(
            crate::ErrorCode::InvalidBindingMessage,
            "binding_message too long or not printable",
        ));
    }
    let expires_in = match params.get("requested_expiry") {
        None => DEFAULT_EXPIRY,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|seconds| *seconds > 0)
            .ok_or_else(|| OAuthError::invalid_request("requested_expiry must be a positive integer"))?
            .min(MAX_EXPIRY),
    };
    // A ping-mode request's id is derived from a stored seed with the server's key, so
    // the ping can name it without the id itself being stored (invariants: secrets only
    // as hashes); a poll-mode one is plain random.
    let seed = provider.rng.token();
    let auth_req_id = match client.ciba_delivery_mode {
        CibaDeliveryMode::Poll => provider.rng.token(),
        CibaDeliveryMode::Ping => provider.ping_auth_req_id(&seed),
    };
    let ping = match client.ciba_delivery_mode {
        CibaDeliveryMode::Poll => None,
        CibaDeliveryMode::Ping => {
            let token = params.get("client_notification_token").ok_or_else(|| {
                OAuthError::invalid_request("client_notification_token is required in ping mode")
            })?;
            let endpoint = client
                .backchannel_client_notification_endpoint
                .clone()
                .ok_or_else(|| OAuthError::server_error("ping client without a notification endpoint"))?;
            Some(PingTarget { endpoint, client_notification_token: token.to_owned(), seed })
        }
    };
    let now = provider.clock.now();
    let request = PendingAuthorization {
        client_id: client.client_id.clone(),
        scopes,
        resources: params.resources().to_vec(),
        decision: Decision::Pending,
        expires_at: now + expires_in,
        user_code: None,
        subject: Some(user.subject.clone()),
        binding_message,
        ping,
        acr_values,
    };
    let id = request_id(&auth_req_id);
    provider.store.start_ciba_request(&id, &request).await?;
    info!(client_id = %client.client_id, subject = %user.subject, "backchannel authentication requested");
    announce(provider, client, &user.username, &request);
    Ok(BackchannelResponse { auth_req_id, expires_in, interval: POLL_INTERVAL })
}

/// The user a request names: exactly one of `login_hint` (a username) and
/// `id_token_hint` (CIBA Core §7.1).
async fn hinted_user(provider: &Provider, params: &Params) -> Result<crate::model::User, OAuthError> {
    let hints = ["login_hint", "id_token_hint", "login_hint_token"];
    if hints.iter().filter(|hint| params.get(hint).is_some()).count() != 1 {
        return Err(OAuthError::invalid_request("exactly one of login_hint and id_token_hint is required"));
    }
    let store = &provider.store;
    let user = if let Some(username) = params.get("login_hint") {
        store.user_by_username(username).await?
    } else if let Some(hint) = params.get("id_token_hint") {
        store.user_by_subject(&id_token::read_hint(&provider.token_issuer(), hint).await?.sub).await?
    } else {
        return Err(OAuthError::invalid_request("login_hint_token is not supported"));
    };
    user.ok_or_else(|| OAuthError::new(crate::ErrorCode::UnknownUserId, "no such user"))
}

/// Tells the operator's webhook about a new request, in the background.
fn announce(provider: &Provider, client: &Client, username: &str, request: &PendingAuthorization) {
    let Some(url) = provider.settings.ciba_notification_webhook.clone() else { return };
    let body = json!({
        "event": "backchannel_authentication_request",
        "subject": request.subject,
        "username": username,
        "client_id": client.client_id,
        "client_name": client.client_name,
        "binding_message": request.binding_message,
        "scope": request.scopes.join(" "),
        "approvals_uri": provider.settings.endpoint("/approvals"),
        "expires_at": request.expires_at,
    });
    send_later(provider.notifier.clone(), url, None, body);
}

fn send_later(notifier: Arc<dyn Notifier>, url: String, bearer: Option<String>, body: serde_json::Value) {
    tokio::spawn(async move {
        if let Err(error) = notifier.post_json(&url, bearer.as_deref(), &body).await {
            warn!(%url, %error, "notification failed");
        }
    });
}

/// The user's pending requests, with the ids the approvals page uses.
///
/// # Errors
/// When the store fails.
pub async fn pending_for(
    provider: &Provider,
    subject: &str,
) -> Result<Vec<(String, PendingAuthorization)>, OAuthError> {
    provider.store.pending_ciba_requests(subject, provider.clock.now()).await
}

/// The signed-in user approves or denies their request `id`; a ping-mode client is
/// then told to fetch the result (CIBA Core §10.2).
///
/// # Errors
/// `invalid_request` when the request is not this user's, or no longer pending.
pub async fn decide(
    provider: &Provider,
    session: &Session,
    id: &str,
    approve: bool,
) -> Result<(), OAuthError> {
    let now = provider.clock.now();
    let request =
        DecoupledRequests::<CibaRequests>::decoupled_request(provider.store.as_ref(), id, now).await?;
    // Only the named user may answer; others learn nothing about the request.
    if request.as_ref().and_then(|r| r.subject.as_deref()) != Some(session.subject.as_str()) {
        return Err(OAuthError::invalid_request("unknown request"));
    }
    let decision = if approve { decoupled::approval(session) } else { Decision::Denied };
    decoupled::check_decision(provider, request.as_ref(), &decision).await?;
    // One conditional write, which takes the request off the user's list.
    let Some(request) = provider.store.decide_ciba_request(id, &decision, now).await? else {
        return Err(decoupled::lost_decision());
    };
    info!(subject = %session.subject, approve, "backchannel authentication decided");
    if let Some(ping) = request.ping {
        let body = json!({ "auth_req_id": provider.ping_auth_req_id(&ping.seed) });
        send_later(provider.notifier.clone(), ping.endpoint, Some(ping.client_notification_token), body);
    }
    Ok(())
}
