//! Signed-in sessions: started once a user has authenticated (a password, a second
//! factor, a passkey), found by the browser's cookie, ended at logout. The store keeps
//! only the cookie's hash.

use crate::model::User;
use crate::secret::{Secret, SecretHash};
use crate::store::Session;
use crate::{OAuthError, Provider, Timestamp};

/// A new session: the cookie value for the browser, and what it stands for.
#[derive(Debug)]
pub struct NewSession {
    pub cookie: Secret,
    pub session: Session,
}

/// Starts a session for `user`, who authenticated at `auth_time` with `amr`.
///
/// # Errors
/// When the store fails.
pub async fn start_session_with(
    provider: &Provider,
    user: &User,
    auth_time: Timestamp,
    amr: Vec<String>,
    now: Timestamp,
) -> Result<NewSession, OAuthError> {
    let cookie = Secret::new(provider.rng.token());
    let session = Session {
        subject: user.subject.clone(),
        username: user.username.clone(),
        auth_time,
        sid: provider.rng.identifier(),
        expires_at: now + provider.settings.session_lifetime,
        amr,
        verified_at: Some(now),
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
