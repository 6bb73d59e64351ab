//! Sign-in attempts, a password or a second factor's code, counted against the limits
//! per account and per address before they are evaluated, so a burst of parallel
//! requests gets no more evaluations than one request at a time would.

use tracing::warn;

use crate::{OAuthError, Provider, Timestamp};

/// Failures per account before sign-in is paused for it.
pub const MAX_FAILURES_PER_ACCOUNT: u32 = 5;
/// Failures per client address before sign-in is paused for it.
pub const MAX_FAILURES_PER_ADDRESS: u32 = 20;
/// How long failures count (and a pause lasts).
pub const FAILURE_WINDOW: i64 = 15 * 60;

/// Why a sign-in failed. None says whether the account exists.
#[derive(Debug, PartialEq, Eq)]
pub enum SignInError {
    /// Wrong username or password.
    Invalid,
    /// Too many recent attempts for this account or address.
    Throttled,
    /// Too many password checks waiting already: try again in a moment.
    Busy,
}

/// One sign-in attempt (a password or a second factor's code) reserved against the
/// limits per account and per address, before it is evaluated.
pub(crate) struct Attempt {
    account_key: String,
    address_key: String,
}

impl Attempt {
    /// Reserves the attempt in one store statement per limit; `None` (logged) when a
    /// limit is reached, with nothing left counted.
    pub(crate) async fn reserve(
        provider: &Provider,
        username: &str,
        address: &str,
        now: Timestamp,
    ) -> Result<Option<Self>, OAuthError> {
        let account_key = format!("account:{}", username.to_lowercase());
        let address_key = format!("address:{address}");
        let store = &provider.store;
        if !store.reserve_attempt(&account_key, MAX_FAILURES_PER_ACCOUNT, now, FAILURE_WINDOW).await? {
            warn!(address, "sign-in paused after repeated failures for the account");
            return Ok(None);
        }
        if !store.reserve_attempt(&address_key, MAX_FAILURES_PER_ADDRESS, now, FAILURE_WINDOW).await? {
            store.refund_attempt(&account_key).await?;
            warn!(address, "sign-in paused after repeated failures from the address");
            return Ok(None);
        }
        Ok(Some(Self { account_key, address_key }))
    }

    /// Gives the attempt back: it succeeded, or was never evaluated (the counters hold
    /// failures only).
    pub(crate) async fn refund(self, provider: &Provider) -> Result<(), OAuthError> {
        provider.store.refund_attempt(&self.account_key).await?;
        provider.store.refund_attempt(&self.address_key).await?;
        Ok(())
    }
}
