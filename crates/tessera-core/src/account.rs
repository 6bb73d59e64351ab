//! What a signed-in user sees and changes about their own account (the `/account`
//! page): their factors and sessions. Changes are logged; the page checks that the
//! session is recent enough ([`crate::mfa::recently_verified`]) before calling these.

use tracing::info;

use crate::store::{PasskeyRecord, Session};
use crate::{OAuthError, Provider};

/// The account as the page shows it.
#[derive(Debug)]
pub struct Overview {
    /// A confirmed authenticator app.
    pub totp: bool,
    pub passkeys: Vec<PasskeyRecord>,
    pub recovery_codes: u32,
    /// Live sessions, oldest sign-in first.
    pub sessions: Vec<Session>,
}

/// What the user `subject` has.
///
/// # Errors
/// When the store fails.
pub async fn overview(provider: &Provider, subject: &str) -> Result<Overview, OAuthError> {
    let store = &provider.store;
    Ok(Overview {
        totp: store.totp(subject).await?.is_some_and(|factor| factor.confirmed),
        passkeys: store.passkeys(subject).await?,
        recovery_codes: store.recovery_codes_left(subject).await?,
        sessions: store.sessions_of(subject, provider.clock.now()).await?,
    })
}

/// Removes the user's authenticator app; `false` when there was none.
///
/// # Errors
/// When the store fails.
pub async fn remove_totp(provider: &Provider, subject: &str) -> Result<bool, OAuthError> {
    let removed = provider.store.delete_totp(subject).await?;
    info!(subject, removed, "authenticator app removed");
    Ok(removed)
}

/// Removes one of the user's passkeys; `false` when it is not theirs or gone.
///
/// # Errors
/// When the store fails.
pub async fn remove_passkey(
    provider: &Provider,
    subject: &str,
    credential_id: &str,
) -> Result<bool, OAuthError> {
    let removed = provider.store.delete_passkey(subject, credential_id).await?;
    info!(subject, removed, "passkey removed");
    Ok(removed)
}

/// Signs out the user's session `sid` (any of theirs); `false` when there is none.
///
/// # Errors
/// When the store fails.
pub async fn end_session(provider: &Provider, subject: &str, sid: &str) -> Result<bool, OAuthError> {
    let ended = provider.store.end_session_of(subject, sid).await?;
    info!(subject, ended, "session signed out from the account page");
    Ok(ended)
}

/// The user of a session, for pages that act on them; `None` when the account is gone.
///
/// # Errors
/// When the store fails.
pub async fn user(provider: &Provider, subject: &str) -> Result<Option<crate::model::User>, OAuthError> {
    Ok(provider.store.user_by_subject(subject).await?)
}
