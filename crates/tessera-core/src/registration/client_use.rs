//! Registered clients' use, noted so that upkeep removes only the unused ones.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::model::{Client, ClientId};
use crate::store::{Flow, FlowStore, RequestStore};
use crate::{OAuthError, Timestamp};

/// How often this instance records that a registered client was used.
const USE_NOTED_EVERY: i64 = 3600;

/// Registered clients this instance saw in use, so the use is written to the store at
/// most once per [`USE_NOTED_EVERY`].
#[derive(Default)]
pub struct ClientUse {
    noted: Mutex<HashMap<ClientId, Timestamp>>,
}

/// Entries beyond which the list of noted uses starts over (bounded memory).
const MAX_NOTED: usize = 100_000;

/// Registered clients' last use, by client id: a client whose entry lapsed is unused.
pub struct ClientUses;

/// A client's use, kept until it lapses.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ClientUsed {}

impl Flow for ClientUses {
    const NAMESPACE: &'static str = "client-used:";
    const NAME: &'static str = "client use";
    type Document = ClientUsed;
}

/// Keeps `client_id` from removal as unused until `until`.
///
/// # Errors
/// When the store fails.
pub(super) async fn mark_used<S: RequestStore + ?Sized>(
    store: &S,
    client_id: &ClientId,
    until: Timestamp,
) -> Result<(), OAuthError> {
    FlowStore::<ClientUses, S>::new(store).start(client_id.as_str(), &ClientUsed {}, until).await
}

/// Whether `client_id` was used (or registered) within its lifetime.
///
/// # Errors
/// When the store fails.
pub(super) async fn is_used<S: RequestStore + ?Sized>(
    store: &S,
    client_id: &ClientId,
    now: Timestamp,
) -> Result<bool, OAuthError> {
    Ok(FlowStore::<ClientUses, S>::new(store).read(client_id.as_str(), now).await?.is_some())
}

impl ClientUse {
    /// Records that a registered client got tokens, keeping it from removal for
    /// another `unused_client_lifetime`. Not a failure for the client when the store
    /// cannot write: the next use tries again. `unused_client_lifetime` is the setting
    /// of `[registration]`.
    pub async fn note(
        &self,
        store: &dyn RequestStore,
        unused_client_lifetime: i64,
        client: &Client,
        now: Timestamp,
    ) {
        if client.registration.is_none() {
            return;
        }
        {
            let mut noted = self.noted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if noted.get(&client.client_id).is_some_and(|at| now - at < USE_NOTED_EVERY) {
                return;
            }
            if noted.len() >= MAX_NOTED {
                noted.clear();
            }
            noted.insert(client.client_id.clone(), now);
        }
        if let Err(error) = mark_used(store, &client.client_id, now + unused_client_lifetime).await {
            tracing::warn!(%error, "recording a registered client's use failed");
            self.noted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&client.client_id);
        }
    }
}
