//! The administration API's rules: who may call it (an access token of this server
//! with the scope `tessera:admin` for the audience `tessera-admin`, sender-bound when
//! the admin client is) and what it does to clients and users in the store. Clients
//! declared in the configuration file belong to the file: the API reads them but does
//! not change them (the next start would undo it).

use serde_json::{Value, json};

use crate::model::{AuthMethod, Client, ClientCredential, ClientId, User};
use crate::secret::SecretHash;
use crate::store::Source;
use crate::tokens::access_token::ResolvedToken;
use crate::userinfo::Presented;
use crate::{OAuthError, Provider};

pub use crate::catalog::{ADMIN_AUDIENCE, ADMIN_SCOPE};
/// The shortest password the API accepts, as `tessera users add`.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// A disabled account's password hash starts with this: it never verifies.
const DISABLED: &str = "!disabled:";

/// Why an admin request failed, beyond the token checks' OAuth errors.
#[derive(Debug)]
pub enum AdminError {
    /// The caller's token (`invalid_token`, `insufficient_scope`, …) or the store.
    OAuth(OAuthError),
    NotFound(String),
    /// The target belongs to the configuration file, or exists already.
    Conflict(String),
    /// The body is not acceptable: `(field, message)` pairs.
    Invalid(Vec<(String, String)>),
}

impl From<OAuthError> for AdminError {
    fn from(error: OAuthError) -> Self {
        Self::OAuth(error)
    }
}

impl From<crate::store::StoreError> for AdminError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::OAuth(error.into())
    }
}

fn invalid(field: &str, message: impl Into<String>) -> AdminError {
    AdminError::Invalid(vec![(field.to_owned(), message.into())])
}

/// Checks the caller: a live access token of this server (bound tokens with their
/// proof or certificate, as at userinfo) with `tessera:admin` for `tessera-admin`.
///
/// # Errors
/// `invalid_token` for a missing, bad, expired or revoked token; `insufficient_scope`
/// without the scope or the audience.
pub async fn authorize(
    provider: &Provider,
    presented: Option<Presented<'_>>,
) -> Result<ResolvedToken, OAuthError> {
    let token = crate::userinfo::resource_token(provider, presented).await?;
    // A client-credentials token (its subject is the client): a user's token carrying the
    // scope, however a client came to be allowed it, administers nothing.
    if token.subject != token.client_id {
        return Err(OAuthError::insufficient_scope("the admin API takes client-credentials tokens only"));
    }
    if !token.scope.iter().any(|scope| scope == ADMIN_SCOPE)
        || !token.audience.iter().any(|aud| aud == ADMIN_AUDIENCE)
    {
        return Err(OAuthError::insufficient_scope(format!(
            "the token needs the scope {ADMIN_SCOPE} for the audience {ADMIN_AUDIENCE}"
        )));
    }
    Ok(token)
}

/// A client as the API shows it: its settings and source, credentials without any
/// secret or hash.
fn client_view(client: &Client, source: Source) -> Value {
    let mut view = serde_json::to_value(client).unwrap_or_else(|_| json!({}));
    let credentials: Vec<Value> = client
        .credentials
        .iter()
        .map(|credential| match credential {
            ClientCredential::SharedSecret { expires, .. }
            | ClientCredential::SaltedSecret { expires, .. } => {
                json!({ "kind": "shared_secret", "expires": expires })
            }
            public => serde_json::to_value(public).unwrap_or_else(|_| json!({})),
        })
        .collect();
    view["credentials"] = json!(credentials);
    if let Some(registration) = view.get_mut("registration").and_then(Value::as_object_mut) {
        registration.remove("access_token");
    }
    view["source"] = json!(source.as_str());
    view
}

async fn source_of(provider: &Provider, client_id: &ClientId) -> Result<Option<Source>, AdminError> {
    let sources = provider.store.client_sources().await?;
    Ok(sources.into_iter().find(|(id, _)| id == client_id).map(|(_, source)| source))
}

/// Every stored client, ordered by id.
///
/// # Errors
/// When the store fails.
pub async fn list_clients(provider: &Provider) -> Result<Value, AdminError> {
    let mut clients = Vec::new();
    for (client_id, source) in provider.store.client_sources().await? {
        if let Some(client) = provider.store.client(&client_id).await? {
            clients.push(client_view(&client, source));
        }
    }
    Ok(json!({ "clients": clients }))
}

/// One client.
///
/// # Errors
/// `NotFound` for an unknown id.
pub async fn read_client(provider: &Provider, client_id: &str) -> Result<Value, AdminError> {
    let id = ClientId(client_id.to_owned());
    let (Some(client), Some(source)) = (provider.store.client(&id).await?, source_of(provider, &id).await?)
    else {
        return Err(AdminError::NotFound(format!("no client `{client_id}`")));
    };
    Ok(client_view(&client, source))
}

/// Creates `client` (checked by the configuration's rules already) as an admin client.
///
/// # Errors
/// `Conflict` when the id is taken.
pub async fn create_client(provider: &Provider, client: Client) -> Result<Value, AdminError> {
    if provider.store.client(&client.client_id).await?.is_some() {
        return Err(AdminError::Conflict(format!("client `{}` exists", client.client_id)));
    }
    provider.store.put_clients_from(Source::Admin, std::slice::from_ref(&client)).await?;
    provider.clients.invalidate();
    tracing::info!(client_id = %client.client_id, "client created through the admin API");
    Ok(client_view(&client, Source::Admin))
}

/// The source of an existing client the API may change; the file's clients are not.
async fn changeable(provider: &Provider, id: &ClientId) -> Result<Client, AdminError> {
    let Some(client) = provider.store.client(id).await? else {
        return Err(AdminError::NotFound(format!("no client `{id}`")));
    };
    if source_of(provider, id).await? == Some(Source::Config) {
        return Err(AdminError::Conflict(format!(
            "client `{id}` is declared in the configuration file: change it there"
        )));
    }
    Ok(client)
}

/// Replaces client `client_id` with `client` (whose id must be the same).
///
/// # Errors
/// `NotFound`, `Conflict` for a configuration client, `Invalid` for another id.
pub async fn replace_client(
    provider: &Provider,
    client_id: &str,
    client: Client,
) -> Result<Value, AdminError> {
    if client.client_id.as_str() != client_id {
        return Err(invalid("client_id", "must be the client's id in the path"));
    }
    let current = changeable(provider, &client.client_id).await?;
    let source = source_of(provider, &client.client_id).await?.unwrap_or(Source::Admin);
    // A dynamic client keeps its registration (its RFC 7592 token).
    let client = Client { registration: current.registration, ..client };
    provider.store.put_clients_from(source, std::slice::from_ref(&client)).await?;
    provider.clients.invalidate();
    tracing::info!(client_id, "client replaced through the admin API");
    Ok(client_view(&client, source))
}

/// Deletes a client and revokes everything issued to it.
///
/// # Errors
/// `NotFound`, `Conflict` for a configuration client.
pub async fn delete_client(provider: &Provider, client_id: &str) -> Result<(), AdminError> {
    let id = ClientId(client_id.to_owned());
    changeable(provider, &id).await?;
    provider.store.remove_client(&id, provider.clock.now()).await?;
    provider.clients.invalidate();
    tracing::info!(client_id, "client deleted through the admin API");
    Ok(())
}

/// Replaces a confidential client's shared secrets with a new random one (256 bits,
/// stored as its SHA-256), returned once.
///
/// # Errors
/// `NotFound`, `Conflict` for a configuration client, `Invalid` for a public client.
pub async fn rotate_secret(provider: &Provider, client_id: &str) -> Result<Value, AdminError> {
    let id = ClientId(client_id.to_owned());
    let mut client = changeable(provider, &id).await?;
    if client.is_public() {
        return Err(invalid("client_id", "a public client has no secret"));
    }
    let secret = provider.rng.token();
    replace_secret(&mut client, &secret);
    let source = source_of(provider, &id).await?.unwrap_or(Source::Admin);
    provider.store.put_clients_from(source, std::slice::from_ref(&client)).await?;
    provider.clients.invalidate();
    tracing::info!(client_id, "client secret rotated through the admin API");
    Ok(json!({ "client_id": client_id, "client_secret": secret }))
}

/// Replaces `client`'s shared secrets with `secret` (kept as its SHA-256: 256 random
/// bits need no slow hash), and lets it authenticate with either secret method.
pub fn replace_secret(client: &mut Client, secret: &str) {
    client.credentials.retain(|credential| {
        !matches!(credential, ClientCredential::SharedSecret { .. } | ClientCredential::SaltedSecret { .. })
    });
    client.credentials.push(ClientCredential::SharedSecret { sha256: SecretHash::of(secret), expires: None });
    for method in [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost] {
        if !client.auth_methods.contains(&method) {
            client.auth_methods.push(method);
        }
    }
}

fn user_view(user: &User, source: Source) -> Value {
    json!({
        "username": user.username,
        "subject": user.subject,
        "claims": user.claims,
        "source": source.as_str(),
        "disabled": user.password_hash.starts_with(DISABLED),
    })
}

async fn user_source(provider: &Provider, username: &str) -> Result<Source, AdminError> {
    let sources = provider.store.user_sources().await?;
    Ok(sources.into_iter().find(|(name, _)| name == username).map_or(Source::Admin, |(_, source)| source))
}

/// Every user, ordered as the store lists them; never a password or its hash.
///
/// # Errors
/// When the store fails.
pub async fn list_users(provider: &Provider) -> Result<Value, AdminError> {
    let sources = provider.store.user_sources().await?;
    let users: Vec<Value> = provider
        .store
        .users()
        .await?
        .iter()
        .map(|user| {
            let source =
                sources.iter().find(|(name, _)| *name == user.username).map_or(Source::Admin, |(_, s)| *s);
            user_view(user, source)
        })
        .collect();
    Ok(json!({ "users": users }))
}

fn hash(provider: &Provider, password: Option<&str>) -> Result<String, AdminError> {
    let Some(password) = password else { return Err(invalid("password", "required")) };
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(invalid("password", format!("at least {MIN_PASSWORD_CHARS} characters")));
    }
    crate::password::hash_password(password, &provider.rng).map_err(|message| invalid("password", message))
}

/// Creates a user from `{username, password, subject?, claims?}`.
///
/// # Errors
/// `Invalid` for a bad body, `Conflict` for a taken username or subject.
pub async fn create_user(provider: &Provider, body: &Value) -> Result<Value, AdminError> {
    let username = body.get("username").and_then(Value::as_str).unwrap_or_default().trim().to_owned();
    if username.is_empty() || username.len() > 200 || username.chars().any(char::is_control) {
        return Err(invalid("username", "required: up to 200 characters of text"));
    }
    let claims = match body.get("claims") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(claims)) if !claims.contains_key("sub") => claims.clone(),
        Some(_) => return Err(invalid("claims", "an object of claims other than sub")),
    };
    let subject = match body.get("subject") {
        None | Some(Value::Null) => provider.rng.identifier(),
        Some(Value::String(subject)) if !subject.is_empty() => subject.clone(),
        Some(_) => return Err(invalid("subject", "a non-empty string")),
    };
    if provider.store.user_by_username(&username).await?.is_some() {
        return Err(AdminError::Conflict(format!("user `{username}` exists")));
    }
    if provider.store.user_by_subject(&subject).await?.is_some() {
        return Err(AdminError::Conflict(format!("subject `{subject}` is taken")));
    }
    let password_hash = hash(provider, body.get("password").and_then(Value::as_str))?;
    let user = User { subject, username, password_hash, claims };
    provider.store.put_user_from(&user, Source::Admin).await?;
    tracing::info!(username = %user.username, "user created through the admin API");
    Ok(user_view(&user, Source::Admin))
}

/// The configuration file's users are changed there (the next start would undo it).
async fn not_from_the_file(provider: &Provider, username: &str) -> Result<(), AdminError> {
    if user_source(provider, username).await? == Source::Config {
        return Err(AdminError::Conflict(format!(
            "user `{username}` is declared in the configuration file: change it there"
        )));
    }
    Ok(())
}

async fn existing_user(provider: &Provider, username: &str) -> Result<User, AdminError> {
    provider
        .store
        .user_by_username(username)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no user `{username}`")))
}

/// Sets a user's password from `{password}` (a disabled user stays disabled).
///
/// # Errors
/// `NotFound`, `Invalid` for a short password.
pub async fn set_password(provider: &Provider, username: &str, body: &Value) -> Result<Value, AdminError> {
    let mut user = existing_user(provider, username).await?;
    not_from_the_file(provider, username).await?;
    let hash = hash(provider, body.get("password").and_then(Value::as_str))?;
    let disabled = user.password_hash.starts_with(DISABLED);
    user.password_hash = if disabled { format!("{DISABLED}{hash}") } else { hash };
    let source = user_source(provider, username).await?;
    provider.store.put_user_from(&user, source).await?;
    tracing::info!(username, "password set through the admin API");
    Ok(user_view(&user, source))
}

/// Disables (`disabled = true`) or enables a user. Disabling ends what the account has:
/// its sessions, grants and consents are revoked, and its password no longer verifies.
///
/// # Errors
/// `NotFound`.
pub async fn set_disabled(provider: &Provider, username: &str, disabled: bool) -> Result<Value, AdminError> {
    let mut user = existing_user(provider, username).await?;
    not_from_the_file(provider, username).await?;
    let source = user_source(provider, username).await?;
    let is_disabled = user.password_hash.starts_with(DISABLED);
    if disabled && !is_disabled {
        // Removal revokes sessions, grants and consents in one step; the account then
        // comes back, locked.
        provider.store.remove_user(username, provider.clock.now()).await?;
        user.password_hash = format!("{DISABLED}{}", user.password_hash);
        provider.store.put_user_from(&user, source).await?;
        tracing::info!(username, "user disabled through the admin API");
    } else if !disabled && is_disabled {
        user.password_hash = user.password_hash.trim_start_matches(DISABLED).to_owned();
        provider.store.put_user_from(&user, source).await?;
        tracing::info!(username, "user enabled through the admin API");
    }
    Ok(user_view(&user, source))
}

/// Deletes a user and revokes everything the account has.
///
/// # Errors
/// `NotFound`; `Conflict` for a user of the configuration file.
pub async fn delete_user(provider: &Provider, username: &str) -> Result<(), AdminError> {
    existing_user(provider, username).await?;
    if user_source(provider, username).await? == Source::Config {
        return Err(AdminError::Conflict(format!(
            "user `{username}` is declared in the configuration file: remove it there"
        )));
    }
    provider.store.remove_user(username, provider.clock.now()).await?;
    tracing::info!(username, "user deleted through the admin API");
    Ok(())
}
