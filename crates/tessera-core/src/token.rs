//! The token endpoint (RFC 6749 §3.2): what every grant shares, done once.

use serde::Serialize;
use tracing::debug;

use crate::client_auth::{self, Credentials, Endpoint};
use crate::grants::{GrantContext, Issue, RefreshPlan, UserGrant};
use crate::model::{Client, GrantType};
use crate::request::Params;
use crate::secret::{Secret, SecretHash};
use crate::sender::Confirmation;
use crate::store::RefreshRecord;
use crate::tokens::id_token::{self, Authentication};
use crate::tokens::{IssuedAccessToken, access_token};
use crate::{ErrorCode, OAuthError, Provider, Timestamp};

/// Grants OAuth 2.1 removed: refused by name so the client learns why.
const REMOVED_GRANTS: [&str; 2] = ["password", "implicit"];

/// A token request.
#[derive(Debug)]
pub struct TokenRequest {
    pub params: Params,
    pub credentials: Credentials,
    /// The `DPoP` header's proof (RFC 9449 §5), if any.
    pub dpop: Option<crate::sender::dpop::DpopProof>,
    /// The TLS client certificate the connection presented (RFC 8705), if any.
    pub certificate: Option<crate::model::ClientCertificate>,
}

/// A successful token response (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
#[derive(Debug)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    pub refresh_token: Option<Secret>,
    pub id_token: Option<String>,
    /// RFC 8693 §2.2.1, for token exchange.
    pub issued_token_type: Option<&'static str>,
}

impl Serialize for TokenResponse {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            access_token: &'a str,
            token_type: &'a str,
            expires_in: i64,
            #[serde(skip_serializing_if = "str::is_empty")]
            scope: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            refresh_token: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            id_token: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            issued_token_type: Option<&'a str>,
        }
        Wire {
            access_token: self.access_token.expose(),
            token_type: self.token_type,
            expires_in: self.expires_in,
            scope: &self.scope,
            refresh_token: self.refresh_token.as_ref().map(Secret::expose),
            id_token: self.id_token.as_deref(),
            issued_token_type: self.issued_token_type,
        }
        .serialize(serializer)
    }
}

/// Handles a token request: pick the grant, authenticate the client, check the grant
/// is allowed for it, let the grant decide, mint.
///
/// # Errors
/// The OAuth error the RFCs name for each failure.
pub async fn exchange(provider: &Provider, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
    let grant_type = request.params.require("grant_type")?;
    let Some(handler) = provider.grants.handler(grant_type) else {
        if REMOVED_GRANTS.contains(&grant_type) {
            return Err(OAuthError::unsupported_grant_type(format!(
                "`{grant_type}` was removed in OAuth 2.1"
            )));
        }
        return Err(OAuthError::unsupported_grant_type("unsupported grant_type"));
    };
    let endpoint = provider.settings.endpoint("/token");
    let authenticated =
        client_auth::authenticate(provider, &request.credentials, Endpoint { url: &endpoint }).await?;
    let client = &authenticated.client;
    tracing::Span::current().record("client_id", client.client_id.as_str());
    if !client.allows_grant(handler.grant_type()) {
        return Err(OAuthError::unauthorized_client(format!("client may not use grant_type `{grant_type}`")));
    }
    let now = provider.clock.now();
    // RFC 9449 §5: a valid proof binds what is issued to the proof's key.
    let dpop_jkt = match &request.dpop {
        Some(proof) => Some(provider.verify_dpop(proof, None, now).await?),
        None if client.require_dpop => {
            return Err(OAuthError::new(ErrorCode::InvalidDpopProof, "this client must send a DPoP proof"));
        }
        None => None,
    };
    let certificate_thumbprint =
        request.certificate.as_ref().map(|certificate| certificate.thumbprint.clone());
    let cx = GrantContext {
        client,
        now,
        dpop_jkt: dpop_jkt.as_deref(),
        certificate_thumbprint: certificate_thumbprint.as_deref(),
        store: &provider.grant_store,
        catalog: &provider.catalog,
        tokens: &provider.settings.tokens,
        rng: &provider.rng,
        issued_tokens: provider,
    };
    let issue = handler.handle(&cx, &request.params).await?;
    // A user removed from the store (no longer in the configuration, `tessera users
    // remove`) gets nothing more from a device or CIBA request approved before: those
    // wait as documents, outside the grants that removal revokes. Codes and refresh
    // tokens need no read here (the hot path): removal revokes their grants, so what
    // they could still mint is inactive at introspection and userinfo, and no refresh
    // token is stored for a revoked grant.
    if issue.user.is_some()
        && matches!(handler.grant_type(), GrantType::DeviceCode | GrantType::Ciba)
        && provider.store.user_by_subject(&issue.subject).await?.is_none()
    {
        return Err(OAuthError::invalid_grant("the user no longer exists"));
    }
    // RFC 8705 §3: whoever presents a certificate gets tokens bound to it, however it
    // authenticated; RFC 9449 §5 likewise for a DPoP key.
    let confirmation = Confirmation::of(dpop_jkt.clone(), certificate_thumbprint.clone());
    let token = access_token::mint(
        &provider.token_issuer(),
        client,
        &issue.access_token_content(),
        confirmation,
        now,
    )
    .await?;
    let (refresh_token, id_token) = match &issue.user {
        None => (None, None),
        Some(user) => {
            let binding = Confirmation { jkt: dpop_jkt, x5t_s256: certificate_thumbprint };
            user_tokens(provider, client, &issue, user, &token, binding, now).await?
        }
    };
    // A registered client in use is kept (a map lookup for every other client).
    provider
        .client_use
        .note(provider.store.as_ref(), provider.settings.registration.unused_client_lifetime, client, now)
        .await;
    // Debug, not info: one line per token would dominate the cost of issuing it.
    debug!(client_id = %client.client_id, grant_type, scope = %issue.scopes.join(" "), "issued access token");
    Ok(TokenResponse {
        access_token: token.value,
        token_type: token.token_type,
        expires_in: token.expires_in,
        // RFC 6749 §5.1: always say which scope was granted.
        scope: issue.scopes.join(" "),
        refresh_token,
        id_token,
        issued_token_type: issue.issued_token_type,
    })
}

/// The refresh and ID tokens of a user grant, and the record that ties the access
/// token to the grant (so that revoking the grant revokes it).
async fn user_tokens(
    provider: &Provider,
    client: &Client,
    issue: &Issue,
    user: &UserGrant,
    token: &IssuedAccessToken,
    binding: Confirmation,
    now: Timestamp,
) -> Result<(Option<Secret>, Option<String>), OAuthError> {
    let store = &provider.store;
    let refresh_token = match &user.refresh {
        RefreshPlan::None => None,
        RefreshPlan::Rotated(value) => Some(value.clone()),
        RefreshPlan::Start(record) => {
            let value = Secret::new(provider.rng.token());
            // RFC 9449 §5, RFC 8705 §4: a public client's refresh tokens stay bound to
            // its DPoP key and its certificate; a confidential client's are bound by its
            // authentication already.
            let binding = if client.is_public() { binding } else { Confirmation::default() };
            let record =
                RefreshRecord { dpop_jkt: binding.jkt, x5t_s256: binding.x5t_s256, ..(**record).clone() };
            store.put_refresh_token(&SecretHash::of(value.expose()), &record).await?;
            Some(value)
        }
    };
    // OpenID Connect Core §3.1.3.3: an ID token when `openid` was granted.
    let id_token = if issue.scopes.iter().any(|s| s == "openid") {
        let authentication = Authentication {
            subject: &issue.subject,
            auth_time: user.auth_time,
            nonce: user.nonce.as_deref(),
            sid: &user.sid,
            grant_id: &user.grant_id,
            amr: &user.amr,
            acr: user.acr.as_deref(),
        };
        Some(
            id_token::mint(
                &provider.token_issuer(),
                client.client_id.as_str(),
                client.id_token_signed_response_alg,
                &authentication,
                token.value.expose(),
                now,
            )
            .await?,
        )
    } else {
        None
    };
    Ok((refresh_token, id_token))
}
