//! Background upkeep: key rotation on schedule and purging of expired rows.
//! Every instance runs both; the store makes that safe.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::Provider;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// Rows of each kind deleted per purge statement: short transactions, small locks.
const PURGE_BATCH: u32 = 500;

/// Starts the upkeep loops; abort the handles to stop them.
#[must_use]
pub fn spawn(provider: &Arc<Provider>) -> Vec<JoinHandle<()>> {
    let keys = {
        let provider = provider.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                // A stale key set refreshes, creating the next key when it is due.
                if let Err(error) = provider.keys.key_set(provider.clock.now()).await {
                    warn!(%error, "signing key upkeep failed");
                }
            }
        })
    };
    let purge = {
        let provider = provider.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                purge_expired(&provider).await;
            }
        })
    };
    let registrations = {
        let provider = provider.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                remove_unused_clients(&provider).await;
            }
        })
    };
    vec![keys, purge, registrations]
}

/// Removes dynamically registered clients unused for `[registration]
/// unused_client_lifetime` (RFC 7591 §5 leaves their lifetime to the server).
pub async fn remove_unused_clients(provider: &Provider) {
    match tessera_core::registration::remove_unused(provider, provider.clock.now()).await {
        Ok(0) => {}
        Ok(removed) => debug!(removed, "removed unused registered clients"),
        Err(error) => warn!(%error, "removing unused registered clients failed"),
    }
}

/// Purges in batches until a pass finds nothing (at most 20 passes per round).
pub async fn purge_expired(provider: &Provider) {
    for _ in 0..20 {
        match provider.store.purge_expired(provider.clock.now(), PURGE_BATCH).await {
            Ok(0) => return,
            Ok(purged) => {
                debug!(purged, "purged expired rows");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => {
                warn!(%error, "purge failed");
                return;
            }
        }
    }
}
