//! Loads the configuration's clients, resources and users into the store at start,
//! so every instance sharing the store sees them, and removes what the file declared
//! before and no longer declares.

use std::collections::HashSet;

use tessera_config::{Config, UserSeed};
use tessera_core::Timestamp;
use tessera_core::model::{ClientId, User};
use tessera_core::password;
use tessera_core::random::Rng;
use tessera_core::store::{ClientStore, Source, Store, StoreError, UserStore};
use tracing::{info, warn};

/// What a start with a configuration would remove from a store: clients and users
/// that came from the file (`Source::Config`) and that it no longer declares.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removals {
    /// Client ids, ordered.
    pub clients: Vec<ClientId>,
    /// Usernames, ordered.
    pub users: Vec<String>,
}

impl Removals {
    /// Whether nothing would be removed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty() && self.users.is_empty()
    }
}

/// What seeding `config` into `store` would remove; reads only.
///
/// # Errors
/// When the store fails.
pub async fn planned_removals<S>(store: &S, config: &Config) -> Result<Removals, StoreError>
where
    S: ClientStore + UserStore + ?Sized,
{
    let declared_clients: HashSet<&ClientId> =
        config.clients.iter().map(|client| &client.client_id).collect();
    let declared_users: HashSet<&str> = config.users.iter().map(|seed| seed.username.as_str()).collect();
    let clients = store
        .client_sources()
        .await?
        .into_iter()
        .filter(|(id, source)| *source == Source::Config && !declared_clients.contains(id))
        .map(|(id, _)| id)
        .collect();
    // Users of `tessera users add` (`Cli`) are the store's own: the file never removes them.
    let users = store
        .user_sources()
        .await?
        .into_iter()
        .filter(|(name, source)| *source == Source::Config && !declared_users.contains(name.as_str()))
        .map(|(name, _)| name)
        .collect();
    Ok(Removals { clients, users })
}

/// Writes clients, resources and users from `config` into `store`, then removes the
/// clients and users the file declared before and no longer declares, revoking
/// everything issued to them. Returns what was removed.
///
/// # Errors
/// When the store fails or a password cannot be hashed.
pub async fn seed(
    store: &dyn Store,
    config: &Config,
    rng: &Rng,
    now: Timestamp,
) -> Result<Removals, StoreError> {
    store.put_resources(&config.resources).await?;
    store.put_clients_from(Source::Config, &config.clients).await?;
    for seed in &config.users {
        let existing = store.user_by_username(&seed.username).await?;
        let user = user_from_seed(seed, existing, rng)?;
        store.put_user_from(&user, Source::Config).await?;
    }
    let removals = planned_removals(store, config).await?;
    for client_id in &removals.clients {
        store.remove_client(client_id, now).await?;
        warn!(client_id = %client_id, "client removed: the configuration no longer declares it; its grants are revoked");
    }
    for username in &removals.users {
        store.remove_user(username, now).await?;
        warn!(
            username,
            "user removed: the configuration no longer declares it; its grants and sessions are revoked"
        );
    }
    if removals.is_empty() {
        info!(
            clients = config.clients.len(),
            users = config.users.len(),
            "configuration loaded into the store"
        );
    }
    Ok(removals)
}

fn user_from_seed(seed: &UserSeed, existing: Option<User>, rng: &Rng) -> Result<User, StoreError> {
    // A generated subject must stay stable across restarts: keep the stored one.
    let subject = seed
        .subject
        .clone()
        .or_else(|| existing.as_ref().map(|user| user.subject.clone()))
        .unwrap_or_else(|| rng.identifier());
    let password_hash = match (&seed.password, &seed.password_hash) {
        (_, Some(hash)) => hash.clone(),
        (Some(password), None) => match existing {
            // Re-hashing on every start would cost ~17 ms per user for nothing.
            Some(user) if password::verify_password(password.expose(), &user.password_hash) => {
                user.password_hash
            }
            _ => password::hash_password(password.expose(), rng).map_err(StoreError::new)?,
        },
        (None, None) => return Err(StoreError::new(format!("user {} has no password", seed.username))),
    };
    Ok(User { subject, username: seed.username.clone(), password_hash, claims: seed.claims.clone() })
}
