//! The passkey ceremonies of the pages: registering one on `/account`, signing in with
//! one alone (a discoverable credential), and using one as the second step after a
//! password. Each ceremony's server half is kept in the store under the hash of a
//! random name the browser gets, for [`CEREMONY_LIFETIME`], and used once.

use serde::{Deserialize, Serialize};
use tracing::info;

use crate::mfa::{self, amr};
use crate::model::User;
use crate::passkeys::{PasskeyError, Passkeys, StoredPasskey, derive_user_handle};
use crate::secret::{Secret, SecretHash, b64url};
use crate::sessions::NewSession;
use crate::store::PasskeyRecord;
use crate::{OAuthError, Provider};

/// How long a browser has between asking for a ceremony's options and answering.
pub const CEREMONY_LIFETIME: i64 = 5 * 60;

/// Passkey sign-ins one address may start per [`CEREMONY_LIFETIME`]: anyone may start
/// one, so what an anonymous caller can make the store keep stays bounded.
pub const MAX_SIGN_IN_CEREMONIES_PER_ADDRESS: u32 = 30;

/// A ceremony's options for the browser and the name to answer it under.
#[derive(Debug)]
pub struct Started {
    pub ceremony: Secret,
    pub options: serde_json::Value,
}

/// What a ceremony is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Purpose {
    /// Adding a passkey to this user's account.
    Register { subject: String },
    /// Signing in with a passkey alone, then continuing here.
    SignIn { interaction: Option<String>, return_to: Option<String> },
    /// The second step of this user's sign-in.
    SecondFactor { subject: String },
}

/// An open ceremony, as stored.
#[derive(Serialize, Deserialize)]
pub struct Pending {
    purpose: Purpose,
    /// webauthn-rs's half of the ceremony (challenge, policy): no secret of the user's.
    state: String,
}

/// Why a ceremony's answer was refused: the user sees one message, the log the reason.
#[derive(Debug, PartialEq, Eq)]
pub enum PasskeyRefused {
    /// Unknown, used or expired ceremony, or one for something else.
    Expired,
    /// The authenticator's answer did not verify (wrong key, origin, challenge, ...).
    NotVerified,
    /// This authenticator holds a passkey registered already.
    AlreadyRegistered,
}

/// Open passkey ceremonies, by the hash of the value naming them.
pub struct Ceremonies;

impl crate::store::Flow for Ceremonies {
    const NAMESPACE: &'static str = "passkey-ceremony:";
    const NAME: &'static str = "passkey ceremony";
    type Document = Pending;
}

fn ceremony_id(ceremony: &str) -> String {
    SecretHash::of(ceremony).to_base64url()
}

/// The relying party, when passkeys are on (the issuer has a host name).
///
/// # Errors
/// `invalid_request` when they are off.
pub fn relying_party(provider: &Provider) -> Result<&Passkeys, OAuthError> {
    provider.passkeys.as_ref().ok_or_else(|| OAuthError::invalid_request("passkeys are off on this server"))
}

async fn open(provider: &Provider, purpose: Purpose, state: String) -> Result<Secret, OAuthError> {
    let ceremony = Secret::new(provider.rng.token());
    let expires_at = provider.clock.now() + CEREMONY_LIFETIME;
    provider
        .flows::<Ceremonies>()
        .start(&ceremony_id(ceremony.expose()), &Pending { purpose, state }, expires_at)
        .await?;
    Ok(ceremony)
}

/// Uses up the ceremony `ceremony`; `None` when it is gone.
async fn take(provider: &Provider, ceremony: &str) -> Result<Option<Pending>, OAuthError> {
    provider.flows::<Ceremonies>().take(&ceremony_id(ceremony), provider.clock.now()).await
}

fn refused(error: &PasskeyError, subject: Option<&str>) -> PasskeyRefused {
    info!(reason = %error, subject, "passkey refused");
    match error {
        PasskeyError::AlreadyRegistered => PasskeyRefused::AlreadyRegistered,
        _ => PasskeyRefused::NotVerified,
    }
}

fn stored(record: &PasskeyRecord) -> Option<StoredPasskey> {
    Some(StoredPasskey {
        credential_id: crate::secret::b64url_decode(&record.credential_id)?,
        name: record.name.clone(),
        credential: record.credential.clone(),
        created_at: record.created_at,
    })
}

async fn passkeys_of(provider: &Provider, subject: &str) -> Result<Vec<StoredPasskey>, OAuthError> {
    Ok(provider.store.passkeys(subject).await?.iter().filter_map(stored).collect())
}

/// The user handle of `subject`: derived under a secret every instance shares, so it
/// reveals nothing of the account (WebAuthn §14.6.1).
async fn user_handle(
    provider: &Provider,
    subject: &str,
) -> Result<[u8; crate::passkeys::USER_HANDLE_LEN], OAuthError> {
    let key = provider.store.shared_secret("passkey-user-handle", &provider.rng.bytes::<32>()).await?;
    Ok(derive_user_handle(&key, subject))
}

/// Starts adding a passkey to `user`'s account.
///
/// # Errors
/// When passkeys are off, or the store fails.
pub async fn start_registration(provider: &Provider, user: &User) -> Result<Started, OAuthError> {
    let passkeys = relying_party(provider)?;
    let handle = user_handle(provider, &user.subject).await?;
    let existing = passkeys_of(provider, &user.subject).await?;
    let (options, state) = passkeys
        .start_registration(&handle, &user.username, &user.username, &existing)
        .map_err(OAuthError::server_error)?;
    let ceremony = open(provider, Purpose::Register { subject: user.subject.clone() }, state).await?;
    Ok(Started { ceremony, options })
}

/// Finishes adding a passkey named `name` for the signed-in `subject`.
///
/// # Errors
/// When passkeys are off, or the store fails.
pub async fn finish_registration(
    provider: &Provider,
    ceremony: &str,
    subject: &str,
    response: &serde_json::Value,
    name: &str,
) -> Result<Result<(), PasskeyRefused>, OAuthError> {
    let passkeys = relying_party(provider)?;
    let Some(pending) = take(provider, ceremony).await? else { return Ok(Err(PasskeyRefused::Expired)) };
    if pending.purpose != (Purpose::Register { subject: subject.to_owned() }) {
        info!(subject, "passkey registration refused: the ceremony is not this user's registration");
        return Ok(Err(PasskeyRefused::Expired));
    }
    let name = name.trim();
    let name = if name.is_empty() { "Passkey" } else { name };
    let now = provider.clock.now();
    let passkey = match passkeys.finish_registration(&pending.state, response, name, now) {
        Ok(passkey) => passkey,
        Err(error) => return Ok(Err(refused(&error, Some(subject)))),
    };
    let record = PasskeyRecord {
        credential_id: b64url(&passkey.credential_id),
        subject: subject.to_owned(),
        name: passkey.name.clone(),
        credential: passkey.credential.clone(),
        created_at: now,
        last_used_at: None,
    };
    // A credential id is one account's: never re-registered to another.
    if !provider.store.add_passkey(&record).await? {
        info!(subject, "passkey registration refused: the credential is registered already");
        return Ok(Err(PasskeyRefused::AlreadyRegistered));
    }
    info!(subject, "passkey added");
    Ok(Ok(()))
}

/// Starts a sign-in with a passkey alone; continues to `interaction` or `return_to`.
///
/// # Errors
/// When passkeys are off, or the store fails.
pub async fn start_sign_in(
    provider: &Provider,
    interaction: Option<String>,
    return_to: Option<String>,
    address: &str,
) -> Result<Started, OAuthError> {
    let key = format!("passkey-sign-in:{address}");
    let now = provider.clock.now();
    if !provider
        .store
        .reserve_attempt(&key, MAX_SIGN_IN_CEREMONIES_PER_ADDRESS, now, CEREMONY_LIFETIME)
        .await?
    {
        tracing::warn!(address, "passkey sign-in refused: too many started from this address");
        return Err(OAuthError::new(
            crate::ErrorCode::TemporarilyUnavailable,
            "too many passkey sign-ins from this address; try again in a few minutes",
        ));
    }
    let (options, state) = relying_party(provider)?.start_sign_in().map_err(OAuthError::server_error)?;
    let ceremony = open(provider, Purpose::SignIn { interaction, return_to }, state).await?;
    Ok(Started { ceremony, options })
}

/// A passkey sign-in that verified: its session, and where it continues.
#[derive(Debug)]
pub struct PasskeySignIn {
    pub new: NewSession,
    pub interaction: Option<String>,
    pub return_to: Option<String>,
}

/// Finishes a sign-in with a passkey alone. The key names its user (the user handle);
/// it must be one of that user's registered keys and verify the user (PIN or
/// biometric): `amr` then holds `hwk` or `swk`, `user` and `mfa`, and `acr` is `phr`.
///
/// # Errors
/// When passkeys are off, or the store fails.
pub async fn finish_sign_in(
    provider: &Provider,
    ceremony: &str,
    response: &serde_json::Value,
) -> Result<Result<PasskeySignIn, PasskeyRefused>, OAuthError> {
    let passkeys = relying_party(provider)?;
    let Some(pending) = take(provider, ceremony).await? else { return Ok(Err(PasskeyRefused::Expired)) };
    let Purpose::SignIn { interaction, return_to } = pending.purpose else {
        return Ok(Err(PasskeyRefused::Expired));
    };
    let (handle, credential_id) = match Passkeys::user_handle_of(response) {
        Ok(found) => found,
        Err(error) => return Ok(Err(refused(&error, None))),
    };
    let Some(record) = provider.store.passkey(&b64url(&credential_id)).await? else {
        info!("passkey sign-in refused: unknown credential");
        return Ok(Err(PasskeyRefused::NotVerified));
    };
    // The handle is not signed: it must be the one derived for the key's owner.
    if handle != user_handle(provider, &record.subject).await? {
        info!(subject = %record.subject, "passkey sign-in refused: the user handle is not the key owner's");
        return Ok(Err(PasskeyRefused::NotVerified));
    }
    let Some(user) = provider.store.user_by_subject(&record.subject).await? else {
        return Ok(Err(PasskeyRefused::NotVerified));
    };
    let candidates = passkeys_of(provider, &user.subject).await?;
    let signed_in = match passkeys.finish_sign_in(&pending.state, response, &candidates) {
        Ok(signed_in) => signed_in,
        Err(error) => return Ok(Err(refused(&error, Some(&user.subject)))),
    };
    let used = record_use(provider, &user.subject, &candidates, &signed_in).await?;
    let methods = mfa::combine(&[], &[used, amr::USER_PRESENCE]);
    let now = provider.clock.now();
    let new = crate::sessions::start_session_with(provider, &user, now, methods, now).await?;
    info!(subject = %user.subject, "signed in with a passkey");
    Ok(Ok(PasskeySignIn { new, interaction, return_to }))
}

/// Stores the key's moved-on counter; returns its `amr` value.
async fn record_use(
    provider: &Provider,
    subject: &str,
    candidates: &[StoredPasskey],
    signed_in: &crate::passkeys::SignedInWithPasskey,
) -> Result<&'static str, OAuthError> {
    let used = candidates
        .iter()
        .find(|key| key.credential_id == signed_in.credential_id)
        .ok_or_else(|| OAuthError::server_error("the verified passkey is not among the user's"))?;
    let credential = signed_in.updated.as_ref().map_or(&used.credential, |updated| &updated.credential);
    let id = b64url(&used.credential_id);
    provider.store.touch_passkey(subject, &id, credential, provider.clock.now()).await?;
    Ok(used.amr())
}

/// Starts a passkey as the second step of `subject`'s sign-in.
///
/// # Errors
/// When passkeys are off, the user has none, or the store fails.
pub async fn start_second_factor(provider: &Provider, subject: &str) -> Result<Started, OAuthError> {
    let keys = passkeys_of(provider, subject).await?;
    let (options, state) = relying_party(provider)?
        .start_second_factor(&keys)
        .map_err(|error| OAuthError::invalid_request(format!("no passkey second step: {error}")))?;
    let ceremony = open(provider, Purpose::SecondFactor { subject: subject.to_owned() }, state).await?;
    Ok(Started { ceremony, options })
}

/// Finishes a passkey second step for `subject`; the methods it adds.
///
/// # Errors
/// When passkeys are off, or the store fails.
pub async fn finish_second_factor(
    provider: &Provider,
    ceremony: &str,
    subject: &str,
    response: &serde_json::Value,
) -> Result<Result<[&'static str; 2], PasskeyRefused>, OAuthError> {
    let passkeys = relying_party(provider)?;
    let Some(pending) = take(provider, ceremony).await? else { return Ok(Err(PasskeyRefused::Expired)) };
    if pending.purpose != (Purpose::SecondFactor { subject: subject.to_owned() }) {
        return Ok(Err(PasskeyRefused::Expired));
    }
    let keys = passkeys_of(provider, subject).await?;
    let signed_in = match passkeys.finish_second_factor(&pending.state, response, &keys) {
        Ok(signed_in) => signed_in,
        Err(error) => return Ok(Err(refused(&error, Some(subject)))),
    };
    let used = record_use(provider, subject, &keys, &signed_in).await?;
    info!(subject, "passkey second step passed");
    Ok(Ok([used, amr::USER_PRESENCE]))
}
