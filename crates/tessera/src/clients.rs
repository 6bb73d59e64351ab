//! `tessera clients`: the clients in the configured store, listed without starting the
//! HTTP server. Never prints a secret or its hash.

use tessera_core::model::{Client, ClientId};
use tessera_core::random::Rng;
use tessera_core::store::{ClientStore, Source};

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

/// Adds a client (source `cli`) from `value`, the keys of a `[[clients]]` table,
/// checked by the configuration's rules. Returns its id.
///
/// # Errors
/// Every problem with the client, or a taken id, or the store failing.
pub async fn add(
    store: &dyn ClientStore,
    config: &tessera_config::Config,
    value: serde_json::Value,
) -> Result<String, ClientsError> {
    let client =
        tessera_config::client_from_json(value, &config.resources, &config.settings.signing.algorithms)
            .map_err(|errors| {
                let lines: Vec<String> = errors
                    .into_iter()
                    .map(|(key, message)| if key.is_empty() { message } else { format!("{key}: {message}") })
                    .collect();
                lines.join("\n")
            })?;
    if store.client(&client.client_id).await?.is_some() {
        return Err(format!("client {} exists", client.client_id).into());
    }
    store.put_clients_from(Source::Cli, std::slice::from_ref(&client)).await?;
    Ok(client.client_id.to_string())
}

/// The source of client `client_id`, refusing clients of the configuration file (the
/// next start would undo a change to them) and unknown ones.
async fn changeable(store: &dyn ClientStore, client_id: &ClientId) -> Result<Client, ClientsError> {
    let Some(client) = store.client(client_id).await? else {
        return Err(format!("no client {client_id}").into());
    };
    let source = store.client_sources().await?.into_iter().find(|(id, _)| id == client_id).map(|(_, s)| s);
    if source == Some(Source::Config) {
        return Err(
            format!("client {client_id} is declared in the configuration file: change it there").into()
        );
    }
    Ok(client)
}

/// Removes a client added on the command line, through the admin API or by
/// registration; its grants and refresh tokens are revoked.
///
/// # Errors
/// An unknown client, one of the configuration file, or the store failing.
pub async fn remove(
    store: &dyn ClientStore,
    client_id: &str,
    now: tessera_core::Timestamp,
) -> Result<(), ClientsError> {
    let id = ClientId(client_id.to_owned());
    changeable(store, &id).await?;
    store.remove_client(&id, now).await?;
    Ok(())
}

/// Gives a confidential client a new random secret (replacing its shared secrets);
/// returns it, to be shown once.
///
/// # Errors
/// An unknown or public client, one of the configuration file, or the store failing.
pub async fn rotate_secret(
    store: &dyn ClientStore,
    client_id: &str,
    rng: &Rng,
) -> Result<String, ClientsError> {
    let id = ClientId(client_id.to_owned());
    let mut client = changeable(store, &id).await?;
    if client.is_public() {
        return Err(format!("client {client_id} is public: it has no secret").into());
    }
    let source =
        store.client_sources().await?.into_iter().find(|(i, _)| *i == id).map_or(Source::Cli, |(_, s)| s);
    let secret = rng.token();
    tessera_core::admin::replace_secret(&mut client, &secret);
    store.put_clients_from(source, std::slice::from_ref(&client)).await?;
    Ok(secret)
}

/// Reads a client definition: a TOML table (`*.toml`) or a JSON object, from `path`
/// or, for `-`, standard input.
///
/// # Errors
/// When it cannot be read or parsed.
pub fn read_definition(path: &std::path::Path) -> Result<serde_json::Value, ClientsError> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?
    };
    if path.extension().is_some_and(|ext| ext == "toml") {
        let table: toml::Table =
            toml::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
        Ok(serde_json::to_value(table)?)
    } else {
        Ok(serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?)
    }
}
