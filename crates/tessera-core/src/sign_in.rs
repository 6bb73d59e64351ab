//! Signing users in: password check with brute-force guards, and server-side sessions
//! that any instance can continue.

use std::sync::OnceLock;

use tracing::{info, warn};

use crate::model::User;
use crate::password;
use crate::secret::{Secret, SecretHash};
use crate::store::Session;
use crate::{OAuthError, Provider, Timestamp};

use crate::attempts::Attempt;
pub use crate::attempts::{FAILURE_WINDOW, MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_ADDRESS, SignInError};
pub use crate::sessions::{NewSession, end_session, session, start_session_with};

/// What a correct password leads to.
#[derive(Debug)]
pub enum PasswordAccepted {
    /// Signed in: the user has no second factor, and none is required.
    Session(NewSession),
    /// The user must pass a second step first ([`crate::mfa::SecondStep`], named by
    /// this cookie value): their second factor, or setting one up when required.
    SecondStep { cookie: Secret, enrol: bool },
}

/// Where a sign-in continues once complete.
#[derive(Debug, Clone, Default)]
pub struct Continuation {
    pub interaction: Option<String>,
    pub return_to: Option<String>,
}

pub use crate::password::PasswordChecks;

/// Checks a username and password. Each attempt is first reserved against the limits
/// per account and per address in one store statement, so a burst of parallel requests
/// gets no more evaluations than one request at a time would; past a limit no password
/// is checked until the window passes. A successful (or unevaluated) attempt is refunded:
/// the counters hold failures, and are not cleared, so a burst holding the right password
/// still allows no more than the limit of wrong ones.
///
/// # Errors
/// [`SignInError`] for the user; `server_error` when the store fails.
pub async fn sign_in(
    provider: &Provider,
    username: &str,
    password: &str,
    address: &str,
    continuation: &Continuation,
    now: Timestamp,
) -> Result<Result<PasswordAccepted, SignInError>, OAuthError> {
    let user = match check_password(provider, username, password, address, now).await? {
        Ok(user) => user,
        Err(refusal) => return Ok(Err(refusal)),
    };
    // Factors are read now, never cached: a reset or enrolment elsewhere counts at once.
    let factors = crate::mfa::factors(provider, &user.subject).await?;
    let required = crate::mfa::mfa_required(provider, None);
    if factors.any() || required {
        let step = crate::mfa::SecondStep {
            subject: user.subject.clone(),
            username: user.username.clone(),
            amr: vec![crate::mfa::amr::PASSWORD.to_owned()],
            auth_time: now,
            session: None,
            interaction: continuation.interaction.clone(),
            return_to: continuation.return_to.clone(),
            enrol: !factors.any(),
        };
        let cookie = crate::mfa::open_second_step(provider, &step).await?;
        info!(subject = %user.subject, enrol = step.enrol, "password accepted; second step next");
        return Ok(Ok(PasswordAccepted::SecondStep { cookie, enrol: step.enrol }));
    }
    let new = start_session(provider, &user, now).await?;
    info!(subject = %user.subject, "signed in");
    Ok(Ok(PasswordAccepted::Session(new)))
}

/// Checks a username and password under the sign-in limits (see [`sign_in`]); the
/// user when they match. Also asked again before account changes.
///
/// # Errors
/// When the store fails.
pub async fn check_password(
    provider: &Provider,
    username: &str,
    password: &str,
    address: &str,
    now: Timestamp,
) -> Result<Result<User, SignInError>, OAuthError> {
    let Some(attempt) = Attempt::reserve(provider, username, address, now).await? else {
        return Ok(Err(SignInError::Throttled));
    };
    let user = provider.store.user_by_username(username).await?;
    let Some(matched) = verify(provider, user.as_ref(), password).await else {
        attempt.refund(provider).await?;
        warn!(address, "sign-in refused: too many password checks waiting");
        return Ok(Err(SignInError::Busy));
    };
    let Some(user) = user.filter(|_| matched) else {
        info!(address, "sign-in failed");
        return Ok(Err(SignInError::Invalid));
    };
    attempt.refund(provider).await?;
    Ok(Ok(user))
}

/// Records that the user of the session behind `cookie` just proved who they are
/// again (password or second factor), for account changes.
///
/// # Errors
/// When the store fails.
pub async fn mark_verified(provider: &Provider, cookie: &str, session: &Session) -> Result<(), OAuthError> {
    let mut session = session.clone();
    session.verified_at = Some(provider.clock.now());
    provider.store.put_session(&SecretHash::of(cookie), &session).await?;
    Ok(())
}

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Why a new password is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum PasswordRefused {
    TooShort,
    /// The account is declared in the configuration file, which sets its password.
    Configured,
}

/// Replaces the password of the user with `subject` (the account page); the user's
/// other sessions end, this one stays.
///
/// # Errors
/// When the store fails.
pub async fn change_password(
    provider: &Provider,
    subject: &str,
    new_password: &str,
    keep_session: &str,
) -> Result<Result<(), PasswordRefused>, OAuthError> {
    if new_password.chars().count() < MIN_PASSWORD_CHARS {
        return Ok(Err(PasswordRefused::TooShort));
    }
    let store = &provider.store;
    let Some(mut user) = store.user_by_subject(subject).await? else {
        return Err(OAuthError::invalid_request("the account is gone"));
    };
    let source = store.user_sources().await?.into_iter().find(|(name, _)| *name == user.username);
    if source.is_some_and(|(_, source)| source == crate::store::Source::Config) {
        return Ok(Err(PasswordRefused::Configured));
    }
    let (password, rng) = (new_password.to_owned(), provider.rng.clone());
    user.password_hash = tokio::task::spawn_blocking(move || password::hash_password(&password, &rng))
        .await
        .map_err(OAuthError::server_error)?
        .map_err(OAuthError::server_error)?;
    store.put_user(&user).await?;
    let now = provider.clock.now();
    let keep = SecretHash::of(keep_session);
    let current = store.session(&keep, now).await?;
    for session in store.sessions_of(subject, now).await? {
        if current.as_ref().is_none_or(|current| current.sid != session.sid) {
            store.end_session_of(subject, &session.sid).await?;
        }
    }
    info!(subject, "password changed; other sessions ended");
    Ok(Ok(()))
}

/// Verifies off the async workers (argon2id takes ~17 ms), through the bounded
/// [`PasswordChecks`]; `None` when its queue is full. An unknown user is checked against
/// a dummy hash so that timing does not reveal whether the account exists.
async fn verify(provider: &Provider, user: Option<&User>, password: &str) -> Option<bool> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let hash = match user {
        Some(user) => user.password_hash.clone(),
        None => DUMMY
            .get_or_init(|| {
                password::hash_password("dummy password", &crate::random::Rng::default()).unwrap_or_default()
            })
            .clone(),
    };
    provider.password_checks.verify(password, hash).await
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
    start_session_with(provider, user, now, vec![crate::mfa::amr::PASSWORD.to_owned()], now).await
}

/// Where to send the browser after signing in: `requested`, a path on this server,
/// resolved against the issuer and kept only when the result has the issuer's origin.
/// Control characters, whitespace and backslashes anywhere (also percent-encoded) refuse
/// it: browsers drop or rewrite them, so `/\t/evil.example` would become `//evil.example`.
#[must_use]
pub fn return_target(issuer: &str, requested: &str) -> Option<String> {
    let hostile = |byte: u8| byte <= b' ' || byte == 0x7f || byte == b'\\';
    if requested.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        return None;
    }
    let bytes = requested.as_bytes();
    let encoded_hostile = bytes.iter().enumerate().any(|(i, &byte)| {
        byte == b'%'
            && std::str::from_utf8(bytes.get(i + 1..i + 3).unwrap_or_default())
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .is_some_and(hostile)
    });
    if encoded_hostile || !requested.starts_with('/') || requested.starts_with("//") {
        return None;
    }
    let issuer = url::Url::parse(issuer).ok()?;
    let target = issuer.join(requested).ok()?;
    let same_origin =
        target.origin() == issuer.origin() && target.username().is_empty() && target.password().is_none();
    same_origin.then(|| target.to_string())
}

#[cfg(test)]
mod return_target_tests {
    use super::return_target;

    #[test]
    fn only_paths_on_the_issuers_origin_are_return_targets() {
        let issuer = "https://id.example/auth";
        assert_eq!(return_target(issuer, "/device?x=1").as_deref(), Some("https://id.example/device?x=1"));
        for hostile in [
            "/\t/evil.example/x",
            "//evil.example/x",
            "/\\evil.example/x",
            "https://evil.example/",
            "/%09/evil.example/x",
            "/%5C/evil.example",
            "/ /evil.example",
            "/\u{3000}/evil.example",
            "evil.example",
            "",
        ] {
            assert_eq!(return_target(issuer, hostile), None, "{hostile:?}");
        }
    }
}
