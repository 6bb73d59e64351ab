//! Signing users in: password check with brute-force guards, and server-side sessions
//! that any instance can continue.

use std::sync::OnceLock;

use tracing::{info, warn};

use crate::model::User;
use crate::password;
use crate::secret::{Secret, SecretHash};
use crate::store::Session;
use crate::{OAuthError, Provider, Timestamp};

/// Failures per account before sign-in is paused for it.
pub const MAX_FAILURES_PER_ACCOUNT: u32 = 5;
/// Failures per client address before sign-in is paused for it.
pub const MAX_FAILURES_PER_ADDRESS: u32 = 20;
/// How long failures count (and a pause lasts).
pub const FAILURE_WINDOW: i64 = 15 * 60;

/// Why a sign-in failed. Neither says whether the account exists.
#[derive(Debug, PartialEq, Eq)]
pub enum SignInError {
    /// Wrong username or password.
    Invalid,
    /// Too many recent failures for this account or address.
    Throttled,
}

/// A new session: the cookie value for the browser, and what it stands for.
#[derive(Debug)]
pub struct NewSession {
    pub cookie: Secret,
    pub session: Session,
}

/// Checks a username and password. Failures are counted per account and per
/// address; past the limits no password is checked until the window passes.
///
/// # Errors
/// [`SignInError`] for the user; `server_error` when the store fails.
pub async fn sign_in(
    provider: &Provider,
    username: &str,
    password: &str,
    address: &str,
    now: Timestamp,
) -> Result<Result<NewSession, SignInError>, OAuthError> {
    let account_key = format!("account:{}", username.to_lowercase());
    let address_key = format!("address:{address}");
    let store = &provider.store;
    if store.failures(&account_key, now).await? >= MAX_FAILURES_PER_ACCOUNT
        || store.failures(&address_key, now).await? >= MAX_FAILURES_PER_ADDRESS
    {
        warn!(address, "sign-in paused after repeated failures");
        return Ok(Err(SignInError::Throttled));
    }
    let user = store.user_by_username(username).await?;
    if !verify(user.as_ref(), password).await {
        store.record_failure(&account_key, now, FAILURE_WINDOW).await?;
        store.record_failure(&address_key, now, FAILURE_WINDOW).await?;
        info!(address, "sign-in failed");
        return Ok(Err(SignInError::Invalid));
    }
    let Some(user) = user else { return Ok(Err(SignInError::Invalid)) };
    store.clear_failures(&account_key).await?;
    let new = start_session(provider, &user, now).await?;
    info!(subject = %user.subject, "signed in");
    Ok(Ok(new))
}

/// Verifies off the async workers (argon2id takes ~17 ms). An unknown user is checked
/// against a dummy hash so that timing does not reveal whether the account exists.
async fn verify(user: Option<&User>, password: &str) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let exists = user.is_some();
    let hash = match user {
        Some(user) => user.password_hash.clone(),
        None => DUMMY
            .get_or_init(|| {
                password::hash_password("dummy password", &crate::random::Rng::default()).unwrap_or_default()
            })
            .clone(),
    };
    let password = password.to_owned();
    let matched = tokio::task::spawn_blocking(move || password::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    matched && exists
}

/// Starts a session for `user`: a random cookie value, stored hashed.
///
/// # Errors
/// When the store fails.
pub async fn start_session(
    provider: &Provider,
    user: &User,
    now: Timestamp,
) -> Result<NewSession, OAuthError> {
    let cookie = Secret::new(provider.rng.token());
    let session = Session {
        subject: user.subject.clone(),
        username: user.username.clone(),
        auth_time: now,
        sid: provider.rng.identifier(),
        expires_at: now + provider.settings.session_lifetime,
    };
    provider.store.put_session(&SecretHash::of(cookie.expose()), &session).await?;
    Ok(NewSession { cookie, session })
}

/// The live session behind a cookie value.
///
/// # Errors
/// When the store fails.
pub async fn session(provider: &Provider, cookie: Option<&str>) -> Result<Option<Session>, OAuthError> {
    let Some(cookie) = cookie else { return Ok(None) };
    Ok(provider.store.session(&SecretHash::of(cookie), provider.clock.now()).await?)
}

/// Ends the session behind a cookie value.
///
/// # Errors
/// When the store fails.
pub async fn end_session(provider: &Provider, cookie: &str) -> Result<(), OAuthError> {
    provider.store.delete_session(&SecretHash::of(cookie)).await?;
    Ok(())
}
