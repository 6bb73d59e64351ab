//! Failure and attempt counters that guard sign-in against guessing.

use async_trait::async_trait;

use super::StoreResult;
use crate::Timestamp;

/// Failure counters that guard sign-in against guessing.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Counts one failure for `key` and returns the count in the current window,
    /// which starts with the first failure and lasts `window` seconds.
    async fn record_failure(&self, key: &str, now: Timestamp, window: i64) -> StoreResult<u32>;
    /// The failures for `key` in its current window (0 once it passed).
    async fn failures(&self, key: &str, now: Timestamp) -> StoreResult<u32>;
    /// Forgets `key`'s failures (after a successful sign-in).
    async fn clear_failures(&self, key: &str) -> StoreResult<()>;
    /// Reserves one attempt for `key` before it is evaluated, in one statement: counts
    /// it and returns `true` while fewer than `limit` are counted in the current window
    /// (which starts with the first attempt and lasts `window` seconds); past the limit
    /// returns `false` and counts nothing. Of any number of racing calls at most
    /// `limit` see `true`, on one instance or many.
    async fn reserve_attempt(&self, key: &str, limit: u32, now: Timestamp, window: i64) -> StoreResult<bool>;
    /// Gives one reserved attempt back (it succeeded, or was never evaluated); never
    /// below zero.
    async fn refund_attempt(&self, key: &str) -> StoreResult<()>;
}
