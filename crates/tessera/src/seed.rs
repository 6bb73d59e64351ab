//! Loads the configuration's clients, resources and users into the store at start,
//! so every instance sharing the store sees them.

use tessera_config::{Config, UserSeed};
use tessera_core::model::User;
use tessera_core::password;
use tessera_core::random::Rng;
use tessera_core::store::{Store, StoreError};

/// Writes clients, resources and users from `config` into `store`.
///
/// # Errors
/// When the store fails or a password cannot be hashed.
pub async fn seed(store: &dyn Store, config: &Config, rng: &Rng) -> Result<(), StoreError> {
    store.put_resources(&config.resources).await?;
    store.put_clients(&config.clients).await?;
    for seed in &config.users {
        let existing = store.user_by_username(&seed.username).await?;
        let user = user_from_seed(seed, existing, rng)?;
        store.put_user(&user).await?;
    }
    Ok(())
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
