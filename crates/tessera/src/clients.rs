//! `tessera clients`: the clients in the configured store, listed without starting the
//! HTTP server. Never prints a secret or its hash.

use tessera_core::store::ClientStore;

/// Why a `tessera clients` command failed; its message is meant for the operator.
pub type ClientsError = Box<dyn std::error::Error + Send + Sync>;

/// One line per client, ordered by id: client id, source (`config`, `cli`, …), name and
/// grant types, tab-separated (grant types comma-separated).
///
/// # Errors
/// When the store fails.
pub async fn list(store: &dyn ClientStore) -> Result<Vec<String>, ClientsError> {
    let mut lines = Vec::new();
    for (client_id, source) in store.client_sources().await? {
        let Some(client) = store.client(&client_id).await? else { continue };
        let grants: Vec<&str> = client.allowed_grant_types.iter().map(|grant| grant.as_str()).collect();
        lines.push(format!("{client_id}\t{source}\t{}\t{}", client.client_name, grants.join(",")));
    }
    Ok(lines)
}
