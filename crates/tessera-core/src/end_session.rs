//! RP-Initiated Logout (OpenID Connect RP-Initiated Logout 1.0): where to send the
//! browser after the session ends, trusted only for the hinted client's registered URIs.

use crate::model::ClientId;
use crate::request::Params;
use crate::tokens::id_token;
use crate::{OAuthError, Provider};

/// A validated logout request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogoutRequest {
    /// Where to go afterwards, with `state` appended; `None` shows Tessera's own page.
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub client_name: Option<String>,
}

impl LogoutRequest {
    /// The URL to send the browser to after sign-out.
    #[must_use]
    pub fn redirect_location(&self) -> Option<String> {
        let uri = self.post_logout_redirect_uri.as_ref()?;
        let Some(state) = &self.state else { return Some(uri.clone()) };
        let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("state", state).finish();
        Some(format!("{uri}{}{query}", if uri.contains('?') { '&' } else { '?' }))
    }
}

/// Checks `id_token_hint`, `client_id`, `post_logout_redirect_uri` and `state`.
///
/// # Errors
/// `invalid_request` for a bad hint, a client mismatch or an unregistered redirect
/// URI: the caller shows an error page and redirects nowhere.
pub async fn validate(provider: &Provider, params: &Params) -> Result<LogoutRequest, OAuthError> {
    let hinted = match params.get("id_token_hint") {
        Some(hint) => Some(id_token::read_hint(&provider.token_issuer(), hint).await?.aud),
        None => None,
    };
    let client_id = match (hinted, params.get("client_id")) {
        (Some(hinted), Some(named)) if hinted != named => {
            return Err(OAuthError::invalid_request("client_id does not match id_token_hint"));
        }
        (Some(hinted), _) => Some(hinted),
        (None, named) => named.map(str::to_owned),
    };
    let client = match &client_id {
        Some(id) => provider.clients.get(&ClientId(id.clone()), provider.clock.now()).await?,
        None => None,
    };
    let post_logout_redirect_uri = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            // Exact match against the client's registered URIs: never an open redirector.
            let client = client.as_ref().ok_or_else(|| {
                OAuthError::invalid_request("post_logout_redirect_uri needs id_token_hint or client_id")
            })?;
            if !client.post_logout_redirect_uris.iter().any(|registered| registered == uri) {
                return Err(OAuthError::invalid_request("post_logout_redirect_uri is not registered"));
            }
            Some(uri.to_owned())
        }
    };
    Ok(LogoutRequest {
        state: post_logout_redirect_uri.as_ref().and(params.get("state").map(str::to_owned)),
        post_logout_redirect_uri,
        client_name: client.map(|client| client.client_name.clone()),
    })
}
