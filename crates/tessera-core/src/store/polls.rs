//! Pacing the polls of device and CIBA requests (RFC 8628 §3.5, CIBA Core §11).

use async_trait::async_trait;

use super::StoreResult;
use crate::Timestamp;

/// What one poll was, as the store decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paced {
    /// Sooner than the interval after the previous poll: `slow_down`.
    pub too_soon: bool,
    /// The interval from now on (grown by a too-soon poll).
    pub interval: i64,
}

/// Poll pacing, one row per polled request.
#[async_trait]
pub trait PollStore: Send + Sync {
    /// Records a poll of `key` at `now` in one statement and says whether it came too
    /// soon: less than the current interval after the previous poll. A too-soon poll
    /// grows the interval by `step`; the first poll of a key starts at `interval` and
    /// is never too soon. Of any number of polls racing at one moment, on one instance
    /// or many, exactly one is not too soon. The row is kept until `expires_at`.
    async fn pace_poll(
        &self,
        key: &str,
        now: Timestamp,
        interval: i64,
        step: i64,
        expires_at: Timestamp,
    ) -> StoreResult<Paced>;
}
