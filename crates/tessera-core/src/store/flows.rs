//! Multi-step flows kept as typed documents in the store's shared table (pushed
//! requests, interactions, the device and CIBA indexes, second sign-in steps, passkey
//! ceremonies, and the marks beside them; device and CIBA requests themselves have a
//! table of their own, see [`super::PollStore`]). Each flow states once its key
//! namespace and its document type ([`Flow`]); [`FlowStore`] is the only way core reads
//! and writes them, so:
//! - no two flows share keys (the namespaces are checked against each other in `lib.rs`);
//! - every read decodes through one door: a document that does not decode (written by
//!   another version, or damaged) is a logged `server_error`, never "expired";
//! - a `take` deletes the live document and returns it in one statement (single use):
//!   of racing takes one gets it.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::RequestStore;
use crate::{OAuthError, Timestamp};

/// One multi-step flow's documents.
pub trait Flow {
    /// Every key of the flow starts with this, and no other flow's key does.
    const NAMESPACE: &'static str;
    /// What the log calls the flow's document.
    const NAME: &'static str;
    /// The document, as stored.
    type Document: Serialize + DeserializeOwned + Send + Sync;

    /// The store key of document `id`.
    #[must_use]
    fn key(id: &str) -> String {
        format!("{}{id}", Self::NAMESPACE)
    }
}

/// The documents of flow `F` in store `S`.
pub struct FlowStore<'a, F, S: ?Sized = dyn RequestStore> {
    store: &'a S,
    flow: PhantomData<fn() -> F>,
}

impl<'a, F: Flow, S: RequestStore + ?Sized> FlowStore<'a, F, S> {
    /// The flow's documents in `store`.
    #[must_use]
    pub fn new(store: &'a S) -> Self {
        Self { store, flow: PhantomData }
    }

    fn key(id: &str) -> String {
        F::key(id)
    }

    /// Stores a document under `id` until `expires_at` (replacing one with that id).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn start(
        &self,
        id: &str,
        document: &F::Document,
        expires_at: Timestamp,
    ) -> Result<(), OAuthError> {
        let document = serde_json::to_value(document).map_err(OAuthError::server_error)?;
        Ok(self.store.put_request(&Self::key(id), &document, expires_at).await?)
    }

    /// The live document `id`, left in place.
    ///
    /// # Errors
    /// When the store fails, or the document does not decode.
    pub async fn read(&self, id: &str, now: Timestamp) -> Result<Option<F::Document>, OAuthError> {
        super::decode_optional(F::NAME, self.store.request(&Self::key(id), now).await?)
    }

    /// Deletes the live document `id` and returns it, in one step: of racing takes one
    /// gets it (single use, RFC 9126 §2.2).
    ///
    /// # Errors
    /// When the store fails, or the document does not decode.
    pub async fn take(&self, id: &str, now: Timestamp) -> Result<Option<F::Document>, OAuthError> {
        super::decode_optional(F::NAME, self.store.consume_request(&Self::key(id), now).await?)
    }

    /// Every live document whose id starts with `id_prefix`, with its id, by id.
    ///
    /// # Errors
    /// When the store fails, or a document does not decode.
    pub async fn list(
        &self,
        id_prefix: &str,
        now: Timestamp,
    ) -> Result<Vec<(String, F::Document)>, OAuthError> {
        let prefix = Self::key(id_prefix);
        let mut documents = Vec::new();
        for (key, document) in self.store.requests_with_prefix(&prefix, now).await? {
            let id = key.strip_prefix(F::NAMESPACE).unwrap_or(&key).to_owned();
            documents.push((id, super::decode_document(F::NAME, document)?));
        }
        Ok(documents)
    }
}
