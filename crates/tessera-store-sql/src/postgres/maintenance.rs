//! Purging expired rows and the readiness probe on PostgreSQL.

use async_trait::async_trait;
use sqlx::AssertSqlSafe;
use tessera_core::Timestamp;
use tessera_core::store::{MaintenanceStore, StoreResult};

use super::PgStore;
use super::rows::at;
use crate::store_error;

/// Readiness: rewrites the one probe row (migration 0008).
const PROBE: &str = "INSERT INTO readiness_probe (id, probes) VALUES (1, 1) \
     ON CONFLICT (id) DO UPDATE SET probes = readiness_probe.probes + 1";

#[async_trait]
impl MaintenanceStore for PgStore {
    async fn purge_expired(&self, now: Timestamp, batch: u32) -> StoreResult<u64> {
        let mut purged = 0;
        for statement in &self.purge_statements {
            // Each statement is its own short transaction over at most `batch` rows.
            let result = sqlx::query(AssertSqlSafe(statement.clone()))
                .bind(at(now))
                .bind(i64::from(batch))
                .execute(&self.pool)
                .await
                .map_err(store_error)?;
            purged += result.rows_affected();
        }
        Ok(purged)
    }

    async fn ping(&self) -> StoreResult<()> {
        // A write, committed: a database that answers reads but cannot write (disk
        // full, read-only standby) is not ready.
        sqlx::query(PROBE).execute(&self.pool).await.map_err(store_error)?;
        Ok(())
    }
}
