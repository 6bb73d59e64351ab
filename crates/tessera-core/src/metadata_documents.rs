//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document): a
//! client whose `client_id` is an https URL is described by the JSON document at that
//! URL, fetched when first needed and cached. Nobody registered such a client with
//! this server: it is public unless its document names `private_key_jwt` with keys,
//! its document's redirect URIs are the only ones it may use, and its user sees where
//! it comes from on the consent page every time.
//!
//! The fetch itself (and the refusal of private addresses, SSRF) lives outside the
//! core, behind [`DocumentSource`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use url::Url;

use crate::Timestamp;
use crate::model::{Client, ClientId};
use crate::registration::metadata::ClientMetadata;

pub use crate::settings::MetadataDocumentSettings;

/// A fetched document: its body and how long HTTP caching allows keeping it.
#[derive(Debug, Clone)]
pub struct FetchedDocument {
    pub body: Vec<u8>,
    /// `Cache-Control: max-age` in seconds, if the server sent one; `Some(0)` for
    /// `no-store`/`no-cache`.
    pub max_age: Option<i64>,
}

/// Fetches a metadata document: https only (http on loopback when allowed), never from
/// a private, loopback or link-local address (judged on the resolved address), with a
/// timeout, no redirects and a byte cap.
#[async_trait]
pub trait DocumentSource: Send + Sync {
    async fn fetch(&self, url: &Url, allow_http_loopback: bool) -> Result<FetchedDocument, String>;
}

/// The least and most time a document is kept, whatever its cache headers say: a
/// client cannot make every request refetch, nor keep a stale document forever.
const MIN_CACHE: i64 = 60;
const MAX_CACHE: i64 = 24 * 3600;
/// Without cache headers.
const DEFAULT_CACHE: i64 = 3600;
/// A failed fetch or a refused document is remembered this long.
const FAILURE_CACHE: i64 = 60;
/// More URLs than this and the cache starts over.
const MAX_ENTRIES: usize = 10_000;

/// Whether `client_id` is a metadata document URL this server may fetch: https (or
/// loopback http when allowed) with a path, no fragment, no credentials, no dot
/// segments (the draft's §3).
#[must_use]
pub fn document_url(client_id: &str, settings: &MetadataDocumentSettings) -> Option<Url> {
    if !settings.enabled || !(client_id.starts_with("https://") || client_id.starts_with("http://")) {
        return None;
    }
    let url = Url::parse(client_id).ok()?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    let scheme_ok =
        url.scheme() == "https" || (url.scheme() == "http" && settings.allow_http_loopback && loopback);
    let dot_segments = client_id.split('/').skip(3).any(|segment| segment == "." || segment == "..");
    // The draft compares client_ids as strings: a URL written another way than its
    // canonical form (`http://2130706433/…`, an upper-case host) would name one document
    // under two ids, so only the canonical form is a client_id.
    let well_formed = url.as_str() == client_id
        && scheme_ok
        && url.host_str().is_some()
        && url.path() != "/"
        && url.fragment().is_none()
        && !client_id.contains('#')
        && url.username().is_empty()
        && url.password().is_none()
        && !dot_segments
        && client_id.len() <= 2000;
    well_formed.then_some(url)
}

#[derive(Clone)]
struct Entry {
    until: Timestamp,
    client: Result<Arc<Client>, String>,
}

/// Documents by URL, with the clients they describe.
pub struct MetadataDocuments {
    source: Arc<dyn DocumentSource>,
    settings: MetadataDocumentSettings,
    entries: Mutex<HashMap<String, Entry>>,
    /// One lock per URL: who holds it fetches, the others wait and read the result.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Fetches in flight, bounded ([`MAX_FETCHES`]).
    fetches: tokio::sync::Semaphore,
}

/// Documents fetched at once, at most.
const MAX_FETCHES: usize = 16;

impl MetadataDocuments {
    #[must_use]
    pub fn new(source: Arc<dyn DocumentSource>, settings: MetadataDocumentSettings) -> Self {
        Self {
            source,
            settings,
            entries: Mutex::default(),
            fetching: Mutex::default(),
            fetches: tokio::sync::Semaphore::new(MAX_FETCHES),
        }
    }

    /// Whether `client_id` names a document this server resolves.
    #[must_use]
    pub fn handles(&self, client_id: &ClientId) -> Option<Url> {
        document_url(client_id.as_str(), &self.settings)
    }

    fn cached(&self, key: &str, now: Timestamp) -> Option<Result<Arc<Client>, String>> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(key).filter(|entry| now < entry.until).map(|entry| entry.client.clone())
    }

    /// The client the document at `url` describes; `None` when it cannot be fetched or
    /// is not acceptable (the reason is logged, and remembered for a minute).
    pub async fn client(&self, url: &Url, now: Timestamp) -> Option<Arc<Client>> {
        let key = url.as_str().to_owned();
        if let Some(cached) = self.cached(&key, now) {
            return cached.ok();
        }
        let lock = {
            let mut fetching = self.fetching.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if fetching.len() >= MAX_ENTRIES {
                fetching.retain(|_, lock| Arc::strong_count(lock) > 1);
            }
            fetching.entry(key.clone()).or_default().clone()
        };
        let _fetching = lock.lock().await;
        if let Some(cached) = self.cached(&key, now) {
            return cached.ok();
        }
        // Anyone can name a new URL: at most this many fetches run at once, and a request
        // past them is refused at once (and not remembered: the next one may fetch).
        let Ok(_slot) = self.fetches.try_acquire() else {
            tracing::warn!(client_id = %url, "client ID metadata document not fetched: too many fetches at once");
            return None;
        };
        let (client, keep) = match self.source.fetch(url, self.settings.allow_http_loopback).await {
            Ok(fetched) => {
                let keep = fetched.max_age.unwrap_or(DEFAULT_CACHE).clamp(MIN_CACHE, MAX_CACHE);
                (self.describe(url, &fetched.body).map(Arc::new), keep)
            }
            Err(error) => (Err(format!("fetch failed: {error}")), FAILURE_CACHE),
        };
        let keep = if client.is_ok() { keep } else { FAILURE_CACHE };
        if let Err(reason) = &client {
            tracing::warn!(client_id = %url, %reason, "client ID metadata document refused");
        }
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, Entry { until: now + keep, client: client.clone() });
        client.ok()
    }

    /// The client a fetched document describes, held to the registration rules.
    fn describe(&self, url: &Url, body: &[u8]) -> Result<Client, String> {
        let metadata: ClientMetadata =
            serde_json::from_slice(body).map_err(|error| format!("not client metadata: {error}"))?;
        let raw: serde_json::Value = serde_json::from_slice(body).map_err(|error| error.to_string())?;
        // The draft's §4.1: the document names itself, compared as strings.
        if raw.get("client_id").and_then(serde_json::Value::as_str) != Some(url.as_str()) {
            return Err("the document's client_id is not its URL".into());
        }
        if raw.get("client_secret").is_some() {
            return Err("a public document cannot carry a client_secret".into());
        }
        // Public unless it names private_key_jwt with its keys (no shared secret can be
        // agreed through a public document).
        let method = metadata.token_endpoint_auth_method.clone().unwrap_or_else(|| "none".to_owned());
        if method != "none" && method != "private_key_jwt" {
            return Err(format!("token_endpoint_auth_method `{method}`: only none and private_key_jwt"));
        }
        let metadata = ClientMetadata {
            token_endpoint_auth_method: Some(method),
            // Redirect URIs are matched as a public native client's (loopback on any port,
            // private-use schemes).
            application_type: Some("native".to_owned()),
            ..metadata
        };
        let client_id = ClientId(url.as_str().to_owned());
        let mut client =
            crate::registration::metadata::client_for(&client_id, metadata, &self.settings.allowed_scopes)
                .map_err(|error| error.description.into_owned())?;
        client.from_metadata_document = true;
        Ok(client)
    }
}
