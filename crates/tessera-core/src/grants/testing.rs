//! Builders for the grants' unit tests: a grant runs against the memory store, a mock
//! clock and the test catalog, handed exactly the context the token endpoint builds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{GrantContext, GrantHandler, Issue, IssuedTokens};
use crate::catalog::Catalog;
use crate::clock::{Clock, MockClock};
use crate::model::AccessTokenFormat;
use crate::model::{AuthMethod, Client, GrantType};
use crate::random::Rng;
use crate::request::Params;
use crate::secret::{Secret, SecretHash};
use crate::settings::TokenSettings;
use crate::store::memory::MemoryStore;
use crate::store::{CodeStore, GrantStores, PendingGrant, RefreshRecord, RefreshStore};
use crate::tokens::ResolvedToken;
use crate::tokens::id_token::IdTokenClaims;
use crate::{ErrorCode, OAuthError, Timestamp};

/// The refresh token lifetime the bench's settings give.
pub const REFRESH_LIFETIME: i64 = 86_400;
/// The longest access token lifetime: how long a revoked grant is remembered.
pub const ACCESS_LIFETIME: i64 = 300;

/// One grant's world: a store, a clock, the catalog, token settings and the tokens
/// "this server issued" (for token exchange).
pub struct Bench {
    pub store: Arc<MemoryStore>,
    grant_store: Arc<dyn GrantStores>,
    pub clock: MockClock,
    catalog: Catalog,
    tokens: TokenSettings,
    rng: Rng,
    pub issued: Issued,
}

impl Bench {
    pub fn new() -> Self {
        let store = Arc::new(MemoryStore::default());
        Self {
            grant_store: store.clone(),
            store,
            clock: MockClock::at(1_800_000_000),
            catalog: crate::test_support::catalog(),
            tokens: TokenSettings {
                access_token_lifetime: ACCESS_LIFETIME,
                longest_access_token_lifetime: ACCESS_LIFETIME,
                id_token_lifetime: 300,
                authorization_code_lifetime: 60,
                refresh_token_lifetime: REFRESH_LIFETIME,
                access_token_format: AccessTokenFormat::Jwt,
            },
            // Seeded: a failing test issues the same codes and tokens when run again.
            rng: Rng::seeded(1),
            issued: Issued::default(),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Runs `grant` for `client` with `params`, as the token endpoint would after
    /// authenticating the client; `proof` is the request's DPoP key thumbprint.
    pub async fn run(
        &self,
        grant: &dyn GrantHandler,
        client: &Client,
        params: &[(&str, &str)],
        proof: Option<&str>,
    ) -> Result<Issue, OAuthError> {
        let cx = GrantContext {
            client,
            now: self.now(),
            dpop_jkt: proof,
            certificate_thumbprint: None,
            store: &self.grant_store,
            catalog: &self.catalog,
            tokens: &self.tokens,
            rng: &self.rng,
            issued_tokens: &self.issued,
        };
        grant.handle(&cx, &form(params)).await
    }

    /// Stores a code for `grant` (`verifier`'s S256 challenge), live for a minute.
    pub async fn code(&self, code: &str, grant: &PendingGrant) {
        self.store.put_code(&SecretHash::of(code), grant, self.now() + 60).await.unwrap();
    }

    /// Stores a refresh token.
    pub async fn refresh_token(&self, value: &str, record: &RefreshRecord) {
        self.store.put_refresh_token(&SecretHash::of(value), record).await.unwrap();
    }

    /// Stores a device or CIBA request `id`, as its start does.
    pub async fn decoupled<F: crate::store::DecoupledFlow>(
        &self,
        id: &str,
        request: &crate::model::PendingAuthorization,
    ) {
        crate::store::start_decoupled::<F, MemoryStore>(self.store.as_ref(), id, request).await.unwrap();
    }

    /// Whether a token of `grant_id` would now be refused as revoked.
    pub async fn grant_is_revoked(&self, grant_id: &str) -> bool {
        let grant = crate::model::GrantId::from(grant_id);
        crate::store::TokenStore::is_revoked(self.store.as_ref(), &format!("{grant_id}.jti"), Some(&grant))
            .await
            .unwrap()
    }
}

/// Form parameters.
pub fn form(params: &[(&str, &str)]) -> Params {
    let values: HashMap<String, String> = params
        .iter()
        .filter(|(name, _)| *name != "resource")
        .map(|(n, v)| ((*n).into(), (*v).into()))
        .collect();
    let resources = params.iter().filter(|(name, _)| *name == "resource").map(|(_, v)| (*v).into()).collect();
    Params::new(values, resources)
}

/// A confidential web client for user grants: codes, refresh tokens, `openid`,
/// `api1.read` and `offline_access`.
pub fn web_client(client_id: &str) -> Client {
    Client {
        allowed_grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        redirect_uris: vec!["https://app.example/cb".into()],
        allowed_scopes: vec!["openid".into(), "api1.read".into(), "offline_access".into()],
        allow_offline_access: true,
        ..crate::test_support::service_client(client_id, &[])
    }
}

/// A public client (auth method `none`, no credentials).
pub fn public_client(client_id: &str, scopes: &[&str]) -> Client {
    Client {
        credentials: vec![],
        auth_methods: vec![AuthMethod::None],
        ..crate::test_support::service_client(client_id, scopes)
    }
}

/// What a signed-in user granted `client_id`: `openid api1.read offline_access`.
pub fn pending_grant(client_id: &str, verifier: &str) -> PendingGrant {
    PendingGrant {
        grant_id: "grant-1".into(),
        client_id: client_id.into(),
        subject: "alice".into(),
        redirect_uri: Some("https://app.example/cb".into()),
        code_challenge: crate::secret::b64url(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            verifier.as_bytes(),
        )),
        scopes: vec!["openid".into(), "api1.read".into(), "offline_access".into()],
        resources: vec![],
        nonce: Some("n-1".into()),
        auth_time: 1_799_999_000,
        sid: "sid-1".into(),
        dpop_jkt: None,
        amr: vec!["pwd".into()],
        acr: None,
    }
}

/// A refresh token record of `grant-1`, issued to `client_id` at `now`.
pub fn refresh_record(client_id: &str, now: Timestamp) -> RefreshRecord {
    RefreshRecord {
        grant_id: "grant-1".into(),
        client_id: client_id.into(),
        subject: "alice".into(),
        scopes: vec!["openid".into(), "api1.read".into(), "offline_access".into()],
        resources: vec![],
        auth_time: now - 100,
        sid: "sid-1".into(),
        issued_at: now,
        expires_at: now + REFRESH_LIFETIME,
        idle_expires_at: None,
        dpop_jkt: None,
        x5t_s256: None,
        amr: vec!["pwd".into()],
        acr: None,
    }
}

/// A device or CIBA request of `client_id` for `openid api1.read offline_access`,
/// live for ten minutes from `now`, with `decision`.
pub fn decoupled_request(
    client_id: &str,
    now: Timestamp,
    decision: crate::model::Decision,
) -> crate::model::PendingAuthorization {
    crate::model::PendingAuthorization {
        client_id: client_id.into(),
        scopes: vec!["openid".into(), "api1.read".into(), "offline_access".into()],
        resources: vec![],
        decision,
        expires_at: now + 600,
        user_code: None,
        subject: None,
        binding_message: None,
        ping: None,
        acr_values: vec![],
    }
}

/// Alice's approval from a session that used a password and an app.
pub fn approved(now: Timestamp) -> crate::model::Decision {
    crate::model::Decision::Approved {
        subject: "alice".into(),
        auth_time: now - 10,
        sid: "sid-1".into(),
        amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
    }
}

/// The error code of a refusal (panics on success, naming what was issued).
pub fn refused(result: Result<Issue, OAuthError>) -> ErrorCode {
    match result {
        Ok(issue) => panic!("expected a refusal, got {issue:?}"),
        Err(error) => error.code,
    }
}

/// The refresh token a grant hands out.
pub fn handed_out(issue: &Issue) -> Option<&Secret> {
    match &issue.user.as_ref()?.refresh {
        super::RefreshPlan::Rotated(next) => Some(next),
        _ => None,
    }
}

/// Tokens "this server issued", by value: what the key ring and store would resolve.
#[derive(Default)]
pub struct Issued {
    access: Mutex<HashMap<String, ResolvedToken>>,
    id: Mutex<HashMap<String, IdTokenClaims>>,
}

impl Issued {
    pub fn access_token(&self, value: &str, token: ResolvedToken) {
        self.access.lock().unwrap().insert(value.into(), token);
    }

    pub fn id_token(&self, value: &str, claims: IdTokenClaims) {
        self.id.lock().unwrap().insert(value.into(), claims);
    }
}

#[async_trait]
impl IssuedTokens for Issued {
    async fn access_token(&self, token: &str, _now: Timestamp) -> Result<Option<ResolvedToken>, OAuthError> {
        Ok(self.access.lock().unwrap().get(token).cloned())
    }

    async fn id_token(&self, token: &str) -> Result<IdTokenClaims, OAuthError> {
        self.id
            .lock()
            .unwrap()
            .get(token)
            .cloned()
            .ok_or_else(|| OAuthError::invalid_request("not an ID token"))
    }
}
