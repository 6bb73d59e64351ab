//! The authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1 §4.1, OpenID Connect Core
//! §3.1.2): `response_type=code` with PKCE S256 only. Decides whether the user must
//! sign in or consent, and issues the code.

use tracing::info;

use crate::catalog::OFFLINE_ACCESS;
use crate::mfa::{Level, Needed};
pub use crate::model::{AuthorizationRequest, ResponseMode};
use crate::model::{Client, ClientId, GrantId, GrantType};
use crate::request::Params;
use crate::secret::SecretHash;
use crate::store::{InteractionStore as _, PendingGrant, PushedRequestStore as _, Session};
use crate::{OAuthError, Provider, Timestamp, pkce, redirect_uri};

/// How long a pending request waits for the user to sign in and consent.
pub const INTERACTION_LIFETIME: i64 = 600;
/// How long a pushed request's `request_uri` is valid (RFC 9126 §2.2).
pub const PUSHED_REQUEST_LIFETIME: i64 = 60;
/// The `request_uri` prefix of pushed requests (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// The longest free-text parameter kept with a request (`state`, `nonce`, `login_hint`,
/// `prompt`, each `resource`): anonymous callers must not make the server store much.
pub const MAX_PARAMETER_BYTES: usize = 2048;
/// The largest request kept while the user signs in (its stored JSON).
pub const MAX_REQUEST_BYTES: usize = 4096;
/// Interactions one address may open per [`INTERACTION_LIFETIME`]: with
/// [`MAX_REQUEST_BYTES`], at most ~400 kB stored per address at any time.
pub const MAX_INTERACTIONS_PER_ADDRESS: u32 = 100;

/// A response on its way to the client's redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRedirect {
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub params: Vec<(String, String)>,
}

impl ClientRedirect {
    /// The `Location` for a query-mode response.
    #[must_use]
    pub fn location(&self) -> String {
        let mut url = self.redirect_uri.clone();
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.params {
            serializer.append_pair(name, value);
        }
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&serializer.finish());
        url
    }
}

/// Why an authorization request failed, and how the failure is shown.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: an error page, never a redirect
    /// (RFC 6749 §4.1.2.1; no open redirector).
    Untrusted(OAuthError),
    /// Sent to the client's redirect URI with `error`, `state` and `iss`.
    Redirect { to: Box<ClientRedirect>, error: OAuthError },
}

/// Builds an error response for the client (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
fn error_redirect(
    provider: &Provider,
    redirect_uri: &str,
    response_mode: ResponseMode,
    state: Option<&str>,
    error: &OAuthError,
) -> AuthorizeError {
    info!(error = error.code.as_str(), description = %error.description, "authorization request refused");
    let mut params = vec![
        ("error".to_owned(), error.code.as_str().to_owned()),
        ("error_description".to_owned(), error.description.to_string()),
    ];
    if let Some(state) = state {
        params.push(("state".to_owned(), state.to_owned()));
    }
    params.push(("iss".to_owned(), provider.settings.issuer.clone()));
    let to = Box::new(ClientRedirect { redirect_uri: redirect_uri.to_owned(), response_mode, params });
    AuthorizeError::Redirect { to, error: OAuthError::new(error.code, error.description.clone()) }
}

impl AuthorizationRequest {
    /// The error response for this request.
    #[must_use]
    pub fn error(&self, provider: &Provider, error: &OAuthError) -> AuthorizeError {
        error_redirect(provider, &self.redirect_uri, self.response_mode, self.state.as_deref(), error)
    }

    fn prompts(&self, value: &str) -> bool {
        self.prompt.iter().any(|p| p == value)
    }
}

/// Reads an authorization request, from its parameters or from a pushed request
/// named by `request_uri` (RFC 9126 §4).
///
/// # Errors
/// [`AuthorizeError`]: untrusted client or redirect URI as a page, the rest redirected.
pub async fn read_request(
    provider: &Provider,
    params: &Params,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let Some(request_uri) = params.get("request_uri") else {
        return validate(provider, params, false).await;
    };
    let client_id = params.get("client_id").ok_or_else(|| {
        AuthorizeError::Untrusted(OAuthError::invalid_request("missing parameter `client_id`"))
    })?;
    let now = provider.clock.now();
    let invalid =
        || AuthorizeError::Untrusted(OAuthError::invalid_request_uri("unknown, used or expired request_uri"));
    let key = request_uri.strip_prefix(REQUEST_URI_PREFIX).ok_or_else(invalid)?;
    // RFC 9126 §4: single use, so a leaked request_uri cannot be replayed.
    let request = provider
        .store
        .take_pushed_request(key, now)
        .await
        .map_err(AuthorizeError::Untrusted)?
        .ok_or_else(invalid)?;
    if request.client_id != client_id {
        return Err(AuthorizeError::Untrusted(OAuthError::invalid_request_uri(
            "request_uri of another client",
        )));
    }
    Ok(request)
}

fn untrusted_server_error(error: crate::store::StoreError) -> AuthorizeError {
    AuthorizeError::Untrusted(OAuthError::from(error))
}

/// Validates authorization request parameters: from the front channel (`/authorize`)
/// or `pushed` to the PAR endpoint.
///
/// # Errors
/// [`AuthorizeError`]: untrusted client or redirect URI as a page, the rest redirected.
pub async fn validate(
    provider: &Provider,
    params: &Params,
    pushed: bool,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let untrusted =
        |description: &'static str| AuthorizeError::Untrusted(OAuthError::invalid_request(description));
    let client_id = params.get("client_id").ok_or_else(|| untrusted("missing parameter `client_id`"))?;
    let now = provider.clock.now();
    let client = provider
        .clients
        .get(&ClientId(client_id.to_owned()), now)
        .await
        .map_err(untrusted_server_error)?
        .ok_or_else(|| untrusted("unknown client"))?;
    let (redirect_uri, redirect_uri_sent) = match params.get("redirect_uri") {
        Some(sent) => {
            // RFC 9700 §4.1.3: the loopback port may vary for public native clients only.
            redirect_uri::find(&client.redirect_uris, sent, client.is_public())
                .ok_or_else(|| untrusted("redirect_uri is not registered"))?;
            (sent.to_owned(), true)
        }
        None => match client.redirect_uris.as_slice() {
            [only] => (only.clone(), false),
            _ => return Err(untrusted("missing parameter `redirect_uri`")),
        },
    };
    // An oversized `state` is not echoed back: the error goes without it.
    let state_too_long = params.get("state").is_some_and(|state| state.len() > MAX_PARAMETER_BYTES);
    let state = params.get("state").filter(|_| !state_too_long);
    let (response_mode, mode_error) = match params.get("response_mode") {
        None | Some("query") => (ResponseMode::Query, None),
        Some("form_post") => (ResponseMode::FormPost, None),
        Some(_) => (ResponseMode::Query, Some(OAuthError::invalid_request("unsupported response_mode"))),
    };
    let fail = |error: OAuthError| error_redirect(provider, &redirect_uri, response_mode, state, &error);
    if let Some(error) = mode_error {
        return Err(fail(error));
    }
    if state_too_long || ["nonce", "login_hint", "prompt"].into_iter().any(|name| too_long(params.get(name)))
    {
        return Err(fail(OAuthError::invalid_request("a parameter is too long")));
    }
    check_request_parameters(&client, params, pushed).map_err(fail)?;
    let grant =
        provider.catalog.grant_user_access(&client, params.get("scope"), params.resources()).map_err(fail)?;
    let is_openid = grant.scopes.iter().any(|s| s == "openid");
    if is_openid && !redirect_uri_sent {
        // OpenID Connect Core §3.1.2.1: redirect_uri is required.
        return Err(fail(OAuthError::invalid_request("missing parameter `redirect_uri`")));
    }
    if grant.scopes.iter().any(|s| s == OFFLINE_ACCESS) && !client.allow_offline_access {
        return Err(fail(OAuthError::invalid_scope("offline_access is not allowed for this client")));
    }
    let prompt: Vec<String> =
        params.get("prompt").map(|p| p.split(' ').map(str::to_owned).collect()).unwrap_or_default();
    if prompt.iter().any(|p| !matches!(p.as_str(), "none" | "login" | "consent" | "select_account")) {
        return Err(fail(OAuthError::invalid_request("unsupported prompt value")));
    }
    if prompt.len() > 1 && prompt.iter().any(|p| p == "none") {
        // OpenID Connect Core §3.1.2.1: none with any other value is an error.
        return Err(fail(OAuthError::invalid_request("prompt=none cannot be combined")));
    }
    // RFC 9449 §10: a JWK thumbprint is a base64url SHA-256.
    if params.get("dpop_jkt").is_some_and(|jkt| jkt.len() != 43 || !pkce::is_well_formed(jkt)) {
        return Err(fail(OAuthError::invalid_request("dpop_jkt is not a JWK SHA-256 thumbprint")));
    }
    // OpenID Connect Core §3.1.2.1 `acr_values`: a request none of whose levels this
    // server can reach ends at the client with unmet_authentication_requirements
    // (OpenID Connect Unmet Authentication Requirements 1.0 §2).
    let acr_values = requested_acr_values(params).map_err(fail)?;
    if !acr_values.is_empty() && !acr_values.iter().any(|value| Level::from_acr(value).is_some()) {
        return Err(fail(OAuthError::new(
            crate::ErrorCode::UnmetAuthenticationRequirements,
            "none of the requested acr_values can be met",
        )));
    }
    let max_age =
        match params.get("max_age") {
            Some(text) => Some(text.parse::<i64>().ok().filter(|age| *age >= 0).ok_or_else(|| {
                fail(OAuthError::invalid_request("max_age must be a non-negative integer"))
            })?),
            None => None,
        };
    let request = AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        redirect_uri_sent,
        response_mode,
        state: state.map(str::to_owned),
        scopes: grant.scopes,
        resources: params.resources().to_vec(),
        nonce: params.get("nonce").map(str::to_owned),
        code_challenge: params.get("code_challenge").unwrap_or_default().to_owned(),
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_owned),
        dpop_jkt: params.get("dpop_jkt").map(str::to_owned),
        authenticated_at: None,
        consented: false,
        browser: None,
        authenticated_subject: None,
        acr_values,
    };
    let stored = serde_json::to_vec(&request).map_err(|error| fail(OAuthError::server_error(error)))?;
    if stored.len() > MAX_REQUEST_BYTES || request.resources.iter().any(|r| too_long(Some(r))) {
        return Err(fail(OAuthError::invalid_request("the authorization request is too large")));
    }
    Ok(request)
}

/// The `acr` values a request asks for: `acr_values` (OpenID Connect Core §3.1.2.1),
/// else the values of an `acr` claim requested in `claims` (§5.5.1.1).
fn requested_acr_values(params: &Params) -> Result<Vec<String>, OAuthError> {
    if let Some(values) = params.get("acr_values") {
        return Ok(values.split(' ').filter(|v| !v.is_empty()).map(str::to_owned).collect());
    }
    let Some(claims) = params.get("claims") else { return Ok(Vec::new()) };
    let claims: serde_json::Value = serde_json::from_str(claims)
        .map_err(|_| OAuthError::invalid_request("claims is not a JSON object"))?;
    let acr = claims.pointer("/id_token/acr");
    let mut values: Vec<String> = acr
        .and_then(|acr| acr.get("values"))
        .and_then(serde_json::Value::as_array)
        .map(|values| values.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if let Some(value) = acr.and_then(|acr| acr.get("value")).and_then(serde_json::Value::as_str) {
        values.push(value.to_owned());
    }
    Ok(values)
}

fn too_long(value: Option<&str>) -> bool {
    value.is_some_and(|value| value.len() > MAX_PARAMETER_BYTES)
}

/// Checks what must hold before scopes are looked at: PAR, response type, grant, PKCE.
fn check_request_parameters(client: &Client, params: &Params, pushed: bool) -> Result<(), OAuthError> {
    if params.get("request").is_some() {
        return Err(OAuthError::request_not_supported("request objects are not supported; use PAR"));
    }
    if pushed && params.get("request_uri").is_some() {
        return Err(OAuthError::invalid_request("request_uri cannot be pushed (RFC 9126 §2.1)"));
    }
    if client.require_pushed_authorization && !pushed {
        // RFC 9126 §5: this client may only authorize with a pushed request.
        return Err(OAuthError::invalid_request("this client must use pushed authorization requests"));
    }
    match params.get("response_type") {
        None => return Err(OAuthError::invalid_request("missing parameter `response_type`")),
        Some("code") => {}
        // OAuth 2.1 §10.1: the implicit and hybrid flows are gone.
        Some(_) => return Err(OAuthError::unsupported_response_type("only response_type=code is supported")),
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::unauthorized_client("client may not use the authorization code grant"));
    }
    // OAuth 2.1 §4.1.1: PKCE is required, and S256 is the only method Tessera knows.
    let challenge = params
        .get("code_challenge")
        .ok_or_else(|| OAuthError::invalid_request("code_challenge required (PKCE)"))?;
    if params.get("code_challenge_method") != Some("S256") {
        return Err(OAuthError::invalid_request("code_challenge_method must be S256"));
    }
    if challenge.len() != 43 || !pkce::is_well_formed(challenge) {
        return Err(OAuthError::invalid_request("code_challenge is not a base64url SHA-256"));
    }
    Ok(())
}

/// What the user must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    SignIn,
    /// The signed-in user must pass a second factor first: the client asked for a
    /// stronger `acr`, or requires one (`require_mfa`).
    SecondFactor,
    /// The signed-in user has no second factor and must set one up (`require_mfa`).
    SetUpSecondFactor,
    Consent,
    Complete,
}

/// Decides the next step for `request` given the browser's session.
///
/// # Errors
/// `login_required` / `consent_required` when `prompt=none` forbids the step.
pub async fn next_step(
    provider: &Provider,
    request: &AuthorizationRequest,
    session: Option<&Session>,
    now: Timestamp,
) -> Result<Step, AuthorizeError> {
    let too_old =
        |session: &Session| request.max_age.is_some_and(|max_age| now - session.auth_time > max_age);
    // A sign-in during this request answers prompt=login and max_age only for the subject
    // it produced: another session in the same browser since then must sign in again.
    let signed_in_here = |session: &Session| {
        request.authenticated_at.is_some()
            && request.authenticated_subject.as_deref() == Some(&session.subject)
    };
    let sign_in = match session {
        None => true,
        Some(session) => !signed_in_here(session) && (request.prompts("login") || too_old(session)),
    };
    if sign_in {
        if request.prompts("none") {
            return Err(request.error(provider, &OAuthError::login_required("the user is not signed in")));
        }
        return Ok(Step::SignIn);
    }
    let Some(session) = session else { return Ok(Step::SignIn) };
    if let Some(step) = stronger_sign_in(provider, request, session).await? {
        if request.prompts("none") {
            return Err(request.error(
                provider,
                &OAuthError::new(crate::ErrorCode::InteractionRequired, "a stronger sign-in is needed"),
            ));
        }
        return Ok(step);
    }
    if !request.consented
        && needs_consent(provider, request, session).await.map_err(|e| request.error(provider, &e))?
    {
        if request.prompts("none") {
            return Err(request.error(provider, &OAuthError::consent_required("the user has not consented")));
        }
        return Ok(Step::Consent);
    }
    Ok(Step::Complete)
}

/// Whether the session's sign-in is too weak for the request, and what to do about it:
/// pass a second factor, or set one up. A level the user cannot reach with any factor
/// they have ends the request with `unmet_authentication_requirements`.
async fn stronger_sign_in(
    provider: &Provider,
    request: &AuthorizationRequest,
    session: &Session,
) -> Result<Option<Step>, AuthorizeError> {
    let client = provider
        .clients
        .get(&request.client_id, provider.clock.now())
        .await
        .map_err(|e| request.error(provider, &e.into()))?;
    let needed = Needed::of(provider, session, &request.acr_values, client.as_deref())
        .await
        .map_err(|e| request.error(provider, &e))?;
    match needed {
        Needed::Nothing => Ok(None),
        Needed::SecondFactor => Ok(Some(Step::SecondFactor)),
        Needed::SetUp => Ok(Some(Step::SetUpSecondFactor)),
        Needed::Unreachable => Err(request.error(
            provider,
            &OAuthError::new(
                crate::ErrorCode::UnmetAuthenticationRequirements,
                "the user cannot reach any of the requested acr_values",
            ),
        )),
    }
}

async fn needs_consent(
    provider: &Provider,
    request: &AuthorizationRequest,
    session: &Session,
) -> Result<bool, OAuthError> {
    let client = provider
        .clients
        .get(&request.client_id, provider.clock.now())
        .await?
        .ok_or_else(|| OAuthError::invalid_request("unknown client"))?;
    if !client.require_consent {
        return Ok(false);
    }
    if request.prompts("consent") {
        return Ok(true);
    }
    // RFC 8252 §8.6: a public client's identity cannot be assured (any local process can
    // claim a loopback port), so remembered consent does not approve it again.
    if client.is_public() {
        return Ok(true);
    }
    // Nobody vouched for a client that registered itself (RFC 7591 §5): every time.
    if client.registration.is_some() {
        return Ok(true);
    }
    let granted = provider.store.consented_scopes(&session.subject, request.client_id.as_str()).await?;
    Ok(!request.scopes.iter().all(|scope| granted.contains(scope)))
}

/// Records that the user of `session` allows the client of `request` its scopes,
/// added to what they allowed it before, so the next request for these scopes skips
/// the page. A failed read fails the whole: earlier consent is never overwritten with
/// less.
///
/// # Errors
/// When the store fails.
pub async fn record_consent(
    provider: &Provider,
    session: &Session,
    request: &AuthorizationRequest,
) -> Result<(), OAuthError> {
    let store = &provider.store;
    let mut granted = store.consented_scopes(&session.subject, request.client_id.as_str()).await?;
    for scope in &request.scopes {
        if !granted.contains(scope) {
            granted.push(scope.clone());
        }
    }
    store.put_consent(&session.subject, request.client_id.as_str(), &granted).await?;
    info!(subject = %session.subject, client_id = %request.client_id, "consent recorded");
    Ok(())
}

/// Notes on interaction `id` that `subject` just signed in during it (at `now`): that
/// answers `prompt=login` and `max_age` for that subject's session, and no other.
///
/// # Errors
/// When the store fails.
pub async fn mark_signed_in(
    provider: &Provider,
    id: &str,
    request: &mut AuthorizationRequest,
    subject: &str,
    now: Timestamp,
) -> Result<(), OAuthError> {
    request.authenticated_at = Some(now);
    request.authenticated_subject = Some(subject.to_owned());
    save_interaction(provider, request, Some(id)).await.map(|_| ())
}

/// Issues the authorization code for a signed-in, consenting user (RFC 6749 §4.1.2).
///
/// # Errors
/// `server_error` when the store fails.
pub async fn issue_code(
    provider: &Provider,
    request: &AuthorizationRequest,
    session: &Session,
    now: Timestamp,
) -> Result<ClientRedirect, OAuthError> {
    let code = provider.rng.token();
    let grant = PendingGrant {
        grant_id: GrantId(provider.rng.identifier()),
        client_id: request.client_id.clone(),
        subject: session.subject.clone(),
        redirect_uri: request.redirect_uri_sent.then(|| request.redirect_uri.clone()),
        code_challenge: request.code_challenge.clone(),
        scopes: request.scopes.clone(),
        resources: request.resources.clone(),
        nonce: request.nonce.clone(),
        auth_time: session.auth_time,
        sid: session.sid.clone(),
        dpop_jkt: request.dpop_jkt.clone(),
        amr: session.amr.clone(),
        acr: Some(crate::mfa::acr_for(&session.amr, &request.acr_values)),
    };
    let expires_at = now + provider.settings.tokens.authorization_code_lifetime;
    provider.store.put_code(&SecretHash::of(&code), &grant, expires_at).await?;
    info!(client_id = %request.client_id, subject = %session.subject, "issued authorization code");
    let mut params = vec![("code".to_owned(), code)];
    if let Some(state) = &request.state {
        params.push(("state".to_owned(), state.clone()));
    }
    // RFC 9207: the issuer identifies who answered, against mix-up attacks.
    params.push(("iss".to_owned(), provider.settings.issuer.clone()));
    Ok(ClientRedirect {
        redirect_uri: request.redirect_uri.clone(),
        response_mode: request.response_mode,
        params,
    })
}

/// The response when the user denies the request.
#[must_use]
pub fn denied(provider: &Provider, request: &AuthorizationRequest) -> AuthorizeError {
    request.error(provider, &OAuthError::access_denied("the user denied the request"))
}

/// Keeps a request while the user signs in or consents; returns its interaction id.
///
/// # Errors
/// When the store fails.
pub async fn save_interaction(
    provider: &Provider,
    request: &AuthorizationRequest,
    id: Option<&str>,
) -> Result<String, OAuthError> {
    let id = id.map_or_else(|| provider.rng.identifier(), str::to_owned);
    let expires_at = provider.clock.now() + INTERACTION_LIFETIME;
    provider.store.save_interaction(&id, request, expires_at).await?;
    Ok(id)
}

/// The request waiting under interaction `id`.
///
/// # Errors
/// When the store fails.
pub async fn load_interaction(
    provider: &Provider,
    id: &str,
) -> Result<Option<AuthorizationRequest>, OAuthError> {
    provider.store.interaction(id, provider.clock.now()).await
}

/// Ends interaction `id`, so its request cannot complete twice.
///
/// # Errors
/// When the store fails.
pub async fn finish_interaction(
    provider: &Provider,
    id: &str,
) -> Result<Option<AuthorizationRequest>, OAuthError> {
    provider.store.finish_interaction(id, provider.clock.now()).await
}

/// Stores a pushed authorization request (RFC 9126 §2.2) and returns its `request_uri`.
///
/// # Errors
/// When the store fails.
pub async fn push(provider: &Provider, request: &AuthorizationRequest) -> Result<String, OAuthError> {
    let key = provider.rng.token();
    let expires_at = provider.clock.now() + PUSHED_REQUEST_LIFETIME;
    provider.store.push_request(&key, request, expires_at).await?;
    Ok(format!("{REQUEST_URI_PREFIX}{key}"))
}

/// Opens a new interaction for `request`, bound to the browser whose binding cookie value
/// is `browser`, and counted against the interactions `address` may open (atomically, in
/// the store, so the limit holds on every instance); returns its id.
///
/// # Errors
/// `temporarily_unavailable` to the client past the limit; `server_error` when the store fails.
pub async fn open_interaction(
    provider: &Provider,
    request: &mut AuthorizationRequest,
    browser: &str,
    address: &str,
) -> Result<String, AuthorizeError> {
    let now = provider.clock.now();
    let key = format!("authorize:{address}");
    let admitted = provider
        .store
        .reserve_attempt(&key, MAX_INTERACTIONS_PER_ADDRESS, now, INTERACTION_LIFETIME)
        .await
        .map_err(|error| request.error(provider, &OAuthError::from(error)))?;
    if !admitted {
        tracing::warn!(address, "authorization request refused: too many open interactions");
        let error = OAuthError::new(
            crate::ErrorCode::TemporarilyUnavailable,
            "too many authorization requests from this address; try again later",
        );
        return Err(request.error(provider, &error));
    }
    request.browser = Some(SecretHash::of(browser).to_base64url());
    save_interaction(provider, request, None).await.map_err(|error| request.error(provider, &error))
}

/// Whether `request` belongs to the browser presenting binding cookie value `browser`.
#[must_use]
pub fn belongs_to_browser(request: &AuthorizationRequest, browser: Option<&str>) -> bool {
    match (&request.browser, browser) {
        (Some(bound), Some(browser)) => {
            crate::secret::constant_time_eq(bound, &SecretHash::of(browser).to_base64url())
        }
        _ => false,
    }
}
