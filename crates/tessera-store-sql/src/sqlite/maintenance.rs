//! Purging expired rows and the readiness probe on SQLite.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::params;
use tessera_core::Timestamp;
use tessera_core::store::{MaintenanceStore, StoreResult};

use super::SqliteStore;

#[async_trait]
impl MaintenanceStore for SqliteStore {
    async fn purge_expired(&self, now: Timestamp, batch: u32) -> StoreResult<u64> {
        let mut purged = 0;
        for index in 0..self.purge_statements.len() {
            // Each statement is its own write over at most `batch` rows, so one
            // commit never holds the lock for a whole purge.
            let statements = Arc::clone(&self.purge_statements);
            let deleted = self
                .write(move |c| {
                    let statement = statements.get(index).map_or("SELECT 0", String::as_str);
                    Ok(c.prepare_cached(statement)?.execute(params![now, i64::from(batch)])?)
                })
                .await?;
            purged += u64::try_from(deleted).unwrap_or(u64::MAX);
        }
        Ok(purged)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.prepare_cached("SELECT 1")?.query_row([], |row| row.get::<_, i64>(0)))?;
        // And a write through the writer, committed: a full disk fails every write
        // while reads still work, and then the store is not ready.
        self.write(|c| {
            c.prepare_cached(
                "INSERT INTO readiness_probe (id, probes) VALUES (1, 1) \
                 ON CONFLICT (id) DO UPDATE SET probes = readiness_probe.probes + 1",
            )?
            .execute([])?;
            Ok(())
        })
        .await
    }
}
