//! Store traits for second factors: authenticator apps (TOTP, RFC 6238), passkeys
//! (WebAuthn) and recovery codes. Factors are never cached in memory: a change made on
//! one instance, or by the command line, counts at the user's next sign-in everywhere.

use async_trait::async_trait;

use super::StoreResult;
use crate::Timestamp;
use crate::secret::SecretHash;

/// A user's authenticator app: one per user.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpFactor {
    /// The shared secret, sealed like signing keys when an encryption key is set.
    pub secret: Vec<u8>,
    /// Whether `secret` is encrypted.
    pub sealed: bool,
    /// Whether a code confirmed the enrolment; an unconfirmed factor signs nobody in.
    pub confirmed: bool,
    /// The newest time step a code was accepted for: each step's code is accepted
    /// once (RFC 6238 §5.2), and never an older one.
    pub last_step: i64,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for TotpFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpFactor")
            .field("sealed", &self.sealed)
            .field("confirmed", &self.confirmed)
            .field("last_step", &self.last_step)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// A registered passkey as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// The WebAuthn credential id, base64url.
    pub credential_id: String,
    /// Whose it is.
    pub subject: String,
    /// The name the user gave it.
    pub name: String,
    /// The verified credential (public key, signature counter) as JSON.
    pub credential: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// Second factors per user (by `sub`).
#[async_trait]
pub trait FactorStore: Send + Sync {
    /// Stores `factor` as the user's authenticator app. A confirmed `factor` replaces
    /// whatever is there; an unconfirmed one (an enrolment in progress) replaces only an
    /// unconfirmed one and returns `false` when a confirmed factor exists.
    async fn put_totp(&self, subject: &str, factor: &TotpFactor) -> StoreResult<bool>;
    /// The user's authenticator app, confirmed or not.
    async fn totp(&self, subject: &str) -> StoreResult<Option<TotpFactor>>;
    /// Accepts a code for time step `step` in one statement: `true` only when `step` is
    /// newer than every step accepted before, and the factor is confirmed (`pending`
    /// false: a sign-in) or unconfirmed (`pending` true: the code that confirms an
    /// enrolment, which then counts as used). Of racing calls with one step, one wins.
    async fn accept_totp_step(&self, subject: &str, step: i64, pending: bool) -> StoreResult<bool>;
    /// Removes the user's authenticator app; `false` when there was none.
    async fn delete_totp(&self, subject: &str) -> StoreResult<bool>;

    /// Replaces the user's recovery codes by these (hashed) ones.
    async fn put_recovery_codes(&self, subject: &str, codes: &[SecretHash]) -> StoreResult<()>;
    /// Uses up one recovery code in one statement: `true` for exactly one of racing calls.
    async fn use_recovery_code(&self, subject: &str, code: &SecretHash) -> StoreResult<bool>;
    /// How many unused recovery codes the user has.
    async fn recovery_codes_left(&self, subject: &str) -> StoreResult<u32>;

    /// Adds a passkey; `false` when its credential id is registered already.
    async fn add_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<bool>;
    /// Records a use of the passkey: its updated credential (signature counter) and
    /// when. `false` when it is gone or belongs to someone else.
    async fn touch_passkey(
        &self,
        subject: &str,
        credential_id: &str,
        credential: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// The user's passkeys, oldest first.
    async fn passkeys(&self, subject: &str) -> StoreResult<Vec<PasskeyRecord>>;
    /// The passkey with this credential id, whoever's it is.
    async fn passkey(&self, credential_id: &str) -> StoreResult<Option<PasskeyRecord>>;
    /// Removes one of the user's passkeys; `false` when it is not theirs or gone.
    async fn delete_passkey(&self, subject: &str, credential_id: &str) -> StoreResult<bool>;

    /// Removes every second factor of the user (a lost phone); `true` when any went.
    async fn delete_factors(&self, subject: &str) -> StoreResult<bool>;
}
