//! Second factors: authenticator apps (TOTP, RFC 6238), recovery codes, the levels a
//! sign-in reaches (`acr`, with `amr` per RFC 8176) and the second sign-in step that
//! a password leads to, or that a client's `acr_values` asks for (step-up).
//!
//! Factors are read from the store at every use, never cached: a factor set up or
//! reset on one instance, or from the command line, counts at the next sign-in
//! everywhere.

pub mod levels;

use serde::{Deserialize, Serialize};
use tracing::info;

use crate::attempts::{Attempt, SignInError};
use crate::model::User;
use crate::random::Rng;
use crate::secret::{Secret, SecretHash};
use crate::settings::Settings;
use crate::store::{Session, Store, TotpFactor};
use crate::tokens::KeySealer;
use crate::{OAuthError, Provider, Timestamp};

pub use levels::{ACR_VALUES_SUPPORTED, Level, acr_for, amr, combine};

/// How long after proving who they are a user may change their account without
/// being asked again.
pub const RECENT_VERIFICATION: i64 = 5 * 60;

/// How long the second sign-in step (or setting up a factor during sign-in) may take.
pub const SECOND_STEP_LIFETIME: i64 = 10 * 60;

/// How many recovery codes a user gets at a time.
pub const RECOVERY_CODES: usize = 10;

/// The second factors a user has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Factors {
    /// A confirmed authenticator app.
    pub totp: bool,
    /// Registered passkeys.
    pub passkeys: usize,
    /// Unused recovery codes.
    pub recovery_codes: u32,
}

impl Factors {
    /// Whether the user has a second factor (recovery codes only back one up).
    #[must_use]
    pub fn any(&self) -> bool {
        self.totp || self.passkeys > 0
    }

    /// Whether this user can reach `level` at all.
    #[must_use]
    pub fn reach(&self, level: Level) -> bool {
        match level {
            Level::Password => true,
            Level::MultiFactor => self.any(),
            Level::PhishingResistant => self.passkeys > 0,
        }
    }
}

/// The user's second factors, read from the store now.
///
/// # Errors
/// When the store fails.
pub async fn factors(provider: &Provider, subject: &str) -> Result<Factors, OAuthError> {
    let mut factors = factors_in(provider.store.as_ref(), subject).await?;
    // Passkeys registered while the server had a host name cannot be used once it has
    // none: they must not make a second step nobody can pass (a locked-out user).
    if provider.passkeys.is_none() {
        factors.passkeys = 0;
    }
    Ok(factors)
}

/// [`factors`] from a store alone (the command line).
///
/// # Errors
/// When the store fails.
pub async fn factors_in(store: &dyn Store, subject: &str) -> Result<Factors, OAuthError> {
    let totp = store.totp(subject).await?.is_some_and(|factor| factor.confirmed);
    let passkeys = store.passkeys(subject).await?.len();
    let recovery_codes = store.recovery_codes_left(subject).await?;
    Ok(Factors { totp, passkeys, recovery_codes })
}

/// What a signed-in user (`subject`, who authenticated with `methods`) must still do
/// for a request asking for `acr_values`, from `client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needed {
    /// The sign-in is strong enough.
    Nothing,
    /// Pass a second factor they have (step-up).
    SecondFactor,
    /// Set one up: they have none, and the client or server requires one.
    SetUp,
    /// No requested level is reachable with the factors they have.
    Unreachable,
}

impl Needed {
    /// [`needed`] for a browser session.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn of(
        provider: &Provider,
        session: &Session,
        acr_values: &[String],
        client: Option<&crate::model::Client>,
    ) -> Result<Self, OAuthError> {
        needed(provider, &session.subject, &session.amr, acr_values, client).await
    }

    /// The error a request that cannot step up here ends with: `interaction_required`
    /// for a step the user can take, `unmet_authentication_requirements` otherwise.
    #[must_use]
    pub fn error(self) -> Option<OAuthError> {
        match self {
            Self::Nothing => None,
            Self::SecondFactor | Self::SetUp => {
                Some(OAuthError::new(crate::ErrorCode::InteractionRequired, "a stronger sign-in is needed"))
            }
            Self::Unreachable => Some(OAuthError::new(
                crate::ErrorCode::UnmetAuthenticationRequirements,
                "the user cannot reach any of the requested acr_values",
            )),
        }
    }
}

/// Decides [`Needed`]: any requested level reached (`acr_values` list alternatives),
/// and `mfa` at least when the client or the server requires a second factor. Factors
/// are read only when the sign-in falls short.
///
/// # Errors
/// When the store fails.
pub async fn needed(
    provider: &Provider,
    subject: &str,
    methods: &[String],
    acr_values: &[String],
    client: Option<&crate::model::Client>,
) -> Result<Needed, OAuthError> {
    let reached = Level::of(methods);
    let requested: Vec<Level> = acr_values.iter().filter_map(|v| Level::from_acr(v)).collect();
    let acr_met = requested.is_empty() || requested.iter().any(|level| reached >= *level);
    let mfa_met = !mfa_required(provider, client) || reached >= Level::MultiFactor;
    if acr_met && mfa_met {
        return Ok(Needed::Nothing);
    }
    let factors = factors(provider, subject).await?;
    if !acr_met && !requested.iter().any(|level| factors.reach(*level)) {
        info!(subject, ?acr_values, "no requested acr is reachable for the user");
        return Ok(Needed::Unreachable);
    }
    Ok(if factors.any() { Needed::SecondFactor } else { Needed::SetUp })
}

/// Whether a second factor is required of this user: by `[sign_in] require_mfa`, or by
/// the client (`require_mfa`) when one is asking.
#[must_use]
pub fn mfa_required(provider: &Provider, client: Option<&crate::model::Client>) -> bool {
    provider.settings.require_mfa || client.is_some_and(|client| client.require_mfa)
}

// --- Authenticator apps (RFC 6238) ---

/// Sealing keeps TOTP secrets encrypted at rest under `signing.encryption_key`, bound
/// to their user (the AEAD's associated data).
fn sealer(settings: &Settings) -> KeySealer {
    KeySealer::new(settings.signing.encryption_key.as_ref())
}

fn sealing_label(subject: &str) -> String {
    format!("totp:{subject}")
}

/// RFC 6238 with the parameters every authenticator app supports: SHA-1, 6 digits,
/// 30-second steps, one step of clock skew either way.
fn totp(secret: Vec<u8>, issuer: &str, account: &str) -> Result<totp_rs::Totp, OAuthError> {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_skew(1)
        .with_secret(secret)
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .map_err(|error| OAuthError::server_error(format!("TOTP: {error:?}")))
}

/// The name authenticator apps show for this server: the issuer's host.
fn issuer_label(settings: &Settings) -> String {
    url::Url::parse(&settings.issuer)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| "Tessera".to_owned())
}

/// An authenticator app being set up: what the user scans or types.
#[derive(Clone)]
pub struct TotpEnrolment {
    /// The `otpauth://totp/…` URI (the QR code's content).
    pub uri: Secret,
    /// The secret in base32, for typing in by hand.
    pub secret_base32: Secret,
}

fn enrolment(settings: &Settings, secret: &[u8], username: &str) -> Result<TotpEnrolment, OAuthError> {
    let totp = totp(secret.to_vec(), &issuer_label(settings), username)?;
    let uri = totp.to_url().map_err(|error| OAuthError::server_error(format!("TOTP URI: {error:?}")))?;
    let secret_base32 = totp.secret().to_base32();
    Ok(TotpEnrolment { uri: Secret::new(uri), secret_base32: Secret::new(secret_base32) })
}

async fn store_totp(
    store: &dyn Store,
    settings: &Settings,
    rng: &Rng,
    subject: &str,
    secret: &[u8],
    confirmed: bool,
    now: Timestamp,
) -> Result<bool, OAuthError> {
    let sealer = sealer(settings);
    let stored = sealer.seal(&sealing_label(subject), secret, rng).map_err(OAuthError::server_error)?;
    let factor = TotpFactor {
        secret: stored,
        sealed: sealer.encrypts(),
        confirmed,
        // No step used yet: a code from any step the skew allows may be the first.
        last_step: now / 30 - 2,
        created_at: now,
    };
    Ok(store.put_totp(subject, &factor).await?)
}

/// Starts setting up an authenticator app: a new secret, stored unconfirmed until a
/// code proves the app has it. `None` when the user has a confirmed one already
/// (remove it first).
///
/// # Errors
/// When the store fails.
pub async fn begin_totp(provider: &Provider, user: &User) -> Result<Option<TotpEnrolment>, OAuthError> {
    let secret = provider.rng.bytes::<20>();
    let (store, settings) = (provider.store.as_ref(), &provider.settings);
    if !store_totp(store, settings, &provider.rng, &user.subject, &secret, false, provider.clock.now())
        .await?
    {
        return Ok(None);
    }
    enrolment(settings, &secret, &user.username).map(Some)
}

/// The enrolment in progress for `user`, to show it again (a page reload).
///
/// # Errors
/// When the store fails or the secret cannot be opened.
pub async fn pending_totp(provider: &Provider, user: &User) -> Result<Option<TotpEnrolment>, OAuthError> {
    match provider.store.totp(&user.subject).await? {
        Some(factor) if !factor.confirmed => {
            let secret = open_secret(&provider.settings, &user.subject, &factor)?;
            enrolment(&provider.settings, &secret, &user.username).map(Some)
        }
        _ => Ok(None),
    }
}

/// Sets up an authenticator app at once, confirmed (`tessera users totp`, which has a
/// store but no running provider): replaces any.
///
/// # Errors
/// When the store fails.
pub async fn enrol_totp(
    store: &dyn Store,
    settings: &Settings,
    rng: &Rng,
    user: &User,
    now: Timestamp,
) -> Result<TotpEnrolment, OAuthError> {
    let secret = rng.bytes::<20>();
    store_totp(store, settings, rng, &user.subject, &secret, true, now).await?;
    info!(subject = %user.subject, "authenticator app set up");
    enrolment(settings, &secret, &user.username)
}

fn open_secret(settings: &Settings, subject: &str, factor: &TotpFactor) -> Result<Vec<u8>, OAuthError> {
    sealer(settings)
        .open(&sealing_label(subject), &factor.secret, factor.sealed)
        .map_err(OAuthError::server_error)
}

/// The time step whose code `code` is, within one step of `now`; `None` otherwise.
/// totp-rs compares in constant time.
fn matching_step(secret: Vec<u8>, code: &str, now: Timestamp) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret, "tessera", "user").ok()?;
    let now = u64::try_from(now).ok()?;
    totp.check(&code, now).and_then(|step| i64::try_from(step).ok())
}

/// Confirms an enrolment with the app's first code; that code then counts as used.
/// `false` for a wrong or stale code (not throttled here: the user is signed in, and
/// the secret is seconds old; the caller counts it against the account).
///
/// # Errors
/// When the store fails.
pub async fn confirm_totp(provider: &Provider, subject: &str, code: &str) -> Result<bool, OAuthError> {
    let Some(factor) = provider.store.totp(subject).await?.filter(|factor| !factor.confirmed) else {
        return Ok(false);
    };
    let secret = open_secret(&provider.settings, subject, &factor)?;
    let Some(step) = matching_step(secret, code, provider.clock.now()) else { return Ok(false) };
    let confirmed = provider.store.accept_totp_step(subject, step, true).await?;
    if confirmed {
        info!(subject, "authenticator app set up");
    }
    Ok(confirmed)
}

// --- Recovery codes ---

/// Makes a new set of recovery codes, replacing any earlier set; returns them for
/// showing once (only their hashes are kept).
///
/// # Errors
/// When the store fails.
pub async fn new_recovery_codes(provider: &Provider, subject: &str) -> Result<Vec<Secret>, OAuthError> {
    // 16 characters of Crockford base32: 80 bits each, so an unsalted SHA-256 suffices.
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let codes: Vec<Secret> = (0..RECOVERY_CODES)
        .map(|_| {
            let bytes = provider.rng.bytes::<16>();
            let chars: String = bytes.iter().map(|b| char::from(ALPHABET[usize::from(b & 31)])).collect();
            Secret::new(format!("{}-{}-{}-{}", &chars[0..4], &chars[4..8], &chars[8..12], &chars[12..16]))
        })
        .collect();
    let hashes: Vec<SecretHash> =
        codes.iter().map(|code| SecretHash::of(&normalize_recovery_code(code.expose()))).collect();
    provider.store.put_recovery_codes(subject, &hashes).await?;
    info!(subject, "recovery codes replaced");
    Ok(codes)
}

/// Recovery codes are compared without dashes, spaces or case.
fn normalize_recovery_code(code: &str) -> String {
    code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

fn with_dashes(code: &str) -> String {
    let plain = normalize_recovery_code(code);
    plain
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

// --- Checking a code at sign-in ---

/// Checks a code from the second sign-in step: an authenticator app's code (accepted
/// once per time step) or a recovery code (single use). Wrong codes count against the
/// same limits as wrong passwords, reserved before the check, so parallel guesses get
/// no more evaluations than the limit. Returns the methods the code adds.
///
/// # Errors
/// [`SignInError`] for the user; `server_error` when the store fails.
pub async fn check_code(
    provider: &Provider,
    user: &User,
    code: &str,
    address: &str,
) -> Result<Result<&'static [&'static str], SignInError>, OAuthError> {
    let now = provider.clock.now();
    let Some(attempt) = Attempt::reserve(provider, &user.username, address, now).await? else {
        return Ok(Err(SignInError::Throttled));
    };
    let accepted = accept_code(provider, &user.subject, code, now).await?;
    let Some(methods) = accepted else {
        info!(address, subject = %user.subject, "second step failed: wrong code");
        return Ok(Err(SignInError::Invalid));
    };
    attempt.refund(provider).await?;
    Ok(Ok(methods))
}

async fn accept_code(
    provider: &Provider,
    subject: &str,
    code: &str,
    now: Timestamp,
) -> Result<Option<&'static [&'static str]>, OAuthError> {
    let store = &provider.store;
    if let Some(factor) = store.totp(subject).await?.filter(|factor| factor.confirmed) {
        let secret = open_secret(&provider.settings, subject, &factor)?;
        if let Some(step) = matching_step(secret, code, now) {
            if store.accept_totp_step(subject, step, false).await? {
                return Ok(Some(&[amr::ONE_TIME_PASSWORD]));
            }
            info!(subject, "authenticator code refused: already used");
            return Ok(None);
        }
    }
    let normalized = normalize_recovery_code(code);
    if normalized.len() == 16 && store.use_recovery_code(subject, &SecretHash::of(&normalized)).await? {
        info!(subject, "signed in with a recovery code");
        // A second factor with no RFC 8176 method of its own: `mfa` alone.
        return Ok(Some(&[amr::MULTIPLE_FACTORS]));
    }
    Ok(None)
}

// --- The second step ---

/// A sign-in between its password and its second factor, or a signed-in user asked for
/// more (step-up, or setting up a factor a client requires). Kept in the store under
/// the hash of a cookie the browser holds, for [`SECOND_STEP_LIFETIME`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondStep {
    pub subject: String,
    pub username: String,
    /// What the user did so far.
    pub amr: Vec<String>,
    /// When they first authenticated (`auth_time` stays that of the sign-in).
    pub auth_time: Timestamp,
    /// The session being stepped up (hash of its cookie); `None`: a sign-in, whose
    /// session starts when this step succeeds.
    pub session: Option<String>,
    /// Where to continue: an authorization request's interaction...
    pub interaction: Option<String>,
    /// ...or a path on this server.
    pub return_to: Option<String>,
    /// The user has no second factor and must set one up (`require_mfa`).
    pub enrol: bool,
}

/// Open second steps, by the hash of the cookie naming them.
pub struct SecondSteps;

impl crate::store::Flow for SecondSteps {
    const NAMESPACE: &'static str = "second-step:";
    const NAME: &'static str = "second step";
    type Document = SecondStep;
}

fn step_id(cookie: &str) -> String {
    SecretHash::of(cookie).to_base64url()
}

/// Opens a second step; returns the cookie value naming it.
///
/// # Errors
/// When the store fails.
pub async fn open_second_step(provider: &Provider, step: &SecondStep) -> Result<Secret, OAuthError> {
    let cookie = Secret::new(provider.rng.token());
    let expires_at = provider.clock.now() + SECOND_STEP_LIFETIME;
    provider.flows::<SecondSteps>().start(&step_id(cookie.expose()), step, expires_at).await?;
    Ok(cookie)
}

/// The second step behind a cookie value, if it is still open.
///
/// # Errors
/// When the store fails, or holds a document this version cannot read.
pub async fn second_step(
    provider: &Provider,
    cookie: Option<&str>,
) -> Result<Option<SecondStep>, OAuthError> {
    let Some(cookie) = cookie else { return Ok(None) };
    provider.flows::<SecondSteps>().read(&step_id(cookie), provider.clock.now()).await
}

/// What finishing a second step produced.
#[derive(Debug)]
pub struct SteppedUp {
    /// The session now holding the stronger sign-in.
    pub session: Session,
    /// A new session's cookie value; `None` when an existing session was stepped up.
    pub new_cookie: Option<Secret>,
    /// What the step was for (where to continue).
    pub step: SecondStep,
}

/// Ends the second step after a factor was verified (`added` methods): single use. A
/// sign-in starts its session; a step-up updates the session it stepped up. `None` when
/// the step is gone (used, expired) or its session ended meanwhile.
///
/// # Errors
/// When the store fails.
pub async fn finish_second_step(
    provider: &Provider,
    cookie: &str,
    added: &[&str],
) -> Result<Option<SteppedUp>, OAuthError> {
    let now = provider.clock.now();
    let Some(step) = provider.flows::<SecondSteps>().take(&step_id(cookie), now).await? else {
        return Ok(None);
    };
    let amr = combine(&step.amr, added);
    if let Some(hash) = &step.session {
        let hash = SecretHash::from_base64(hash).map_err(OAuthError::server_error)?;
        let Some(mut session) =
            provider.store.session(&hash, now).await?.filter(|s| s.subject == step.subject)
        else {
            return Ok(None);
        };
        session.amr = amr;
        session.verified_at = Some(now);
        provider.store.put_session(&hash, &session).await?;
        info!(subject = %session.subject, acr = Level::of(&session.amr).acr(), "stepped up");
        return Ok(Some(SteppedUp { session, new_cookie: None, step }));
    }
    let user = User {
        subject: step.subject.clone(),
        username: step.username.clone(),
        password_hash: String::new(),
        claims: serde_json::Map::new(),
    };
    let new = crate::sessions::start_session_with(provider, &user, step.auth_time, amr, now).await?;
    info!(subject = %user.subject, acr = Level::of(&new.session.amr).acr(), "signed in");
    Ok(Some(SteppedUp { session: new.session, new_cookie: Some(new.cookie), step }))
}

/// Whether the session proved who the user is recently enough for account changes.
#[must_use]
pub fn recently_verified(session: &Session, now: Timestamp) -> bool {
    let verified = session.verified_at.unwrap_or(session.auth_time).max(session.auth_time);
    now - verified <= RECENT_VERIFICATION
}

/// Formats a recovery code for display.
#[must_use]
pub fn display_recovery_code(code: &Secret) -> String {
    with_dashes(code.expose())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn methods(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn a_password_and_a_code_are_two_factors() {
        assert_eq!(combine(&methods(&["pwd"]), &["otp"]), methods(&["pwd", "otp", "mfa"]));
        assert_eq!(Level::of(&combine(&methods(&["pwd"]), &["otp"])), Level::MultiFactor);
        assert_eq!(Level::of(&methods(&["pwd"])), Level::Password);
    }

    #[test]
    fn a_verified_passkey_alone_is_two_factors_and_phishing_resistant() {
        let passkey = combine(&[], &["hwk", "user"]);
        assert_eq!(passkey, methods(&["hwk", "user", "mfa"]));
        assert_eq!(Level::of(&passkey), Level::PhishingResistant);
        assert_eq!(combine(&[], &["swk"]), methods(&["swk"]), "no user verification: one factor");
    }

    #[test]
    fn a_recovery_code_after_a_password_is_pwd_and_mfa() {
        let recovered = combine(&methods(&["pwd"]), &["mfa"]);
        assert_eq!(recovered, methods(&["pwd", "mfa"]));
        assert_eq!(Level::of(&recovered), Level::MultiFactor);
        assert_eq!(combine(&recovered, &["otp"]), methods(&["pwd", "otp", "mfa"]), "mfa once");
    }

    #[test]
    fn acr_is_the_first_requested_level_reached_else_the_strongest() {
        let mfa = methods(&["pwd", "otp", "mfa"]);
        assert_eq!(acr_for(&mfa, &methods(&["phr", "mfa"])), "mfa");
        assert_eq!(acr_for(&mfa, &methods(&["pwd"])), "pwd");
        assert_eq!(acr_for(&mfa, &[]), "mfa");
        assert_eq!(acr_for(&methods(&["pwd"]), &methods(&["mfa"])), "pwd");
    }

    #[test]
    fn codes_match_their_own_step_and_its_neighbours_only() {
        let secret = b"12345678901234567890".to_vec();
        // RFC 6238 Appendix B, SHA-1 at T = 59: 94287082 (8 digits); 6 digits: 287082.
        assert_eq!(matching_step(secret.clone(), "287082", 59), Some(1));
        assert_eq!(matching_step(secret.clone(), "287 082", 59), Some(1));
        assert_eq!(matching_step(secret.clone(), "287082", 59 + 30), Some(1), "one step of skew");
        assert_eq!(matching_step(secret.clone(), "287082", 59 + 90), None);
        assert_eq!(matching_step(secret.clone(), "28708", 59), None);
        assert_eq!(matching_step(secret, "abcdef", 59), None);
    }

    #[test]
    fn recovery_codes_ignore_case_dashes_and_spaces() {
        assert_eq!(normalize_recovery_code("AB12-cd34 EF56-gh78"), "ab12cd34ef56gh78");
        assert_eq!(with_dashes("ab12cd34ef56gh78"), "ab12-cd34-ef56-gh78");
    }
}
