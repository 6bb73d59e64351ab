//! Housekeeping: purging expired rows and the readiness probe.

use async_trait::async_trait;

use super::StoreResult;
use crate::Timestamp;

/// Housekeeping.
#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    /// Deletes at most `batch` expired rows of each kind; returns how many went.
    /// Safe to run on many instances at once: no full-table locks, no deadlocks.
    async fn purge_expired(&self, now: Timestamp, batch: u32) -> StoreResult<u64>;
    /// Whether the store answers (readiness).
    async fn ping(&self) -> StoreResult<()>;
}
