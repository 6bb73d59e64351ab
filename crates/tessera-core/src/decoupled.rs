//! What the device flow (RFC 8628) and CIBA share: a request the user approves on
//! another device while the client polls. The request lives in the store's
//! [`RequestStore`](crate::store::RequestStore) under one key and is redeemed by
//! deleting it (one atomic step); polling pace is kept under a second key, so a poll
//! can never overwrite the user's decision.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::grants::{GrantContext, GrantFacts, IN_DOUBT_WINDOW, Issue, UserGrant, first_refresh};
use crate::model::ClientId;
use crate::store::{Flow, FlowStore, GrantStores, PollRules, Polled, Session, StoreError, decode_document};
use crate::{OAuthError, Timestamp};

/// How long a decided or expired request is kept, so a late poll learns `expired_token`
/// rather than `invalid_grant`.
pub const KEPT_AFTER_EXPIRY: i64 = 3600;
/// RFC 8628 §3.5: each `slow_down` adds five seconds to the interval.
pub const SLOW_DOWN_STEP: i64 = 5;

/// The user's decision on a pending request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Decision {
    Pending,
    Approved {
        subject: String,
        auth_time: Timestamp,
        sid: String,
        /// How the approving user authenticated (RFC 8176), for the ID token.
        #[serde(default)]
        amr: Vec<String>,
    },
    Denied,
}

/// A request waiting for the user, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub client_id: ClientId,
    pub scopes: Vec<String>,
    pub resources: Vec<String>,
    pub decision: Decision,
    /// When the client must stop polling (`expires_in`).
    pub expires_at: Timestamp,
    /// Device flow: the code the user types. CIBA: none.
    #[serde(default)]
    pub user_code: Option<String>,
    /// CIBA: the user asked, and the message shown on both devices.
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub binding_message: Option<String>,
    /// CIBA ping mode: where and how to tell the client the result is ready.
    #[serde(default)]
    pub ping: Option<PingTarget>,
    /// CIBA `acr_values` (CIBA Core §7.1): the approving sign-in must reach one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
}

/// A ping-mode client's notification endpoint (CIBA Core §10.2). The ping must carry
/// the `auth_req_id`, which is stored only hashed like every other one: the ping
/// recomputes it from `seed` with a server key (`Provider::ping_auth_req_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingTarget {
    pub endpoint: String,
    pub client_notification_token: String,
    /// Random; the `auth_req_id` is its HMAC under the server's key.
    pub seed: String,
}

/// Device authorization requests (RFC 8628), by the hash of their `device_code`.
pub struct DeviceRequests;

impl Flow for DeviceRequests {
    const NAMESPACE: &'static str = "device:";
    const NAME: &'static str = "device request";
    type Document = PendingAuthorization;
}

/// Backchannel authentication requests (CIBA), by the hash of their `auth_req_id`.
pub struct CibaRequests;

impl Flow for CibaRequests {
    const NAMESPACE: &'static str = "ciba:";
    const NAME: &'static str = "CIBA request";
    type Document = PendingAuthorization;
}

/// A flow whose requests the user decides on another device while the client polls.
pub trait Decoupled: Flow<Document = PendingAuthorization> {}
impl Decoupled for DeviceRequests {}
impl Decoupled for CibaRequests {}

/// Stores a new pending request under `id`.
///
/// # Errors
/// When the store fails.
pub async fn save<F: Decoupled>(
    cx: &crate::Provider,
    id: &str,
    request: &PendingAuthorization,
) -> Result<(), OAuthError> {
    cx.flows::<F>().start(id, request, request.expires_at + KEPT_AFTER_EXPIRY).await
}

/// The request `id`, if it exists (expired ones included, until kept no longer).
///
/// # Errors
/// When the store fails.
pub async fn load<F: Decoupled>(
    cx: &crate::Provider,
    id: &str,
) -> Result<Option<PendingAuthorization>, OAuthError> {
    cx.flows::<F>().read(id, cx.clock.now()).await
}

/// Records the user's decision on a still-pending, unexpired request: one conditional
/// write in the store (pending -> decided), so of racing decisions exactly one wins.
///
/// # Errors
/// `invalid_request` when the request is gone, expired or already decided.
pub async fn decide<F: Decoupled>(
    cx: &crate::Provider,
    id: &str,
    decision: Decision,
) -> Result<PendingAuthorization, OAuthError> {
    let now = cx.clock.now();
    let requests = cx.flows::<F>();
    let Some(read) = requests.read_versioned(id, now).await? else {
        return Err(OAuthError::invalid_request("unknown request"));
    };
    let mut request = read.document.clone();
    if request.expires_at <= now {
        return Err(OAuthError::expired_token("the request expired"));
    }
    if request.decision != Decision::Pending {
        return Err(OAuthError::invalid_request("the request was already decided"));
    }
    // An approval is a sign-in for the client: its `acr_values` and `require_mfa` hold
    // for the approving session as at `/authorize` (the page then steps it up).
    if let Decision::Approved { subject, amr, .. } = &decision {
        let client = cx.clients.get(&request.client_id, now).await?;
        let needed = crate::mfa::needed(cx, subject, amr, &request.acr_values, client.as_deref()).await?;
        if let Some(error) = needed.error() {
            tracing::info!(subject, ?needed, "approval refused until the sign-in is stronger");
            return Err(error);
        }
    }
    request.decision = decision;
    // One conditional statement against the pending version just read: a decision (or
    // a redemption) that landed in between makes this one lose.
    if !requests.transition(id, &read, &request, now).await? {
        return Err(OAuthError::invalid_request("the request was already decided"));
    }
    Ok(request)
}

/// One poll at the token endpoint (RFC 8628 §3.4, §3.5; CIBA Core §11): the tokens'
/// grant when approved (redeemed exactly once), else the error telling the client
/// what to do.
///
/// # Errors
/// `authorization_pending`, `slow_down`, `access_denied`, `expired_token`, or
/// `invalid_grant` for an unknown, redeemed or foreign request.
pub async fn poll<F: Decoupled>(
    cx: &GrantContext<'_>,
    in_doubt: &InDoubtRedemptions,
    id: &str,
    interval: i64,
) -> Result<Issue, OAuthError> {
    let store = cx.store;
    // Pace and in-doubt notes are kept under the request's own key.
    let key = &FlowStore::<F>::key(id);
    // One atomic step of the store finds the request, checks that it is this client's
    // and not expired, paces the poll, and takes a decided request: of racing polls
    // on any instance one is in time, and only that one can redeem.
    let rules = PollRules {
        owner: serde_json::json!({ "client_id": cx.client.client_id }),
        kept_after_expiry: KEPT_AFTER_EXPIRY,
        decided: decided_shapes(),
        interval,
        step: SLOW_DOWN_STEP,
        pace_until: cx.now + 2 * KEPT_AFTER_EXPIRY,
    };
    let request: PendingAuthorization = match store.poll(key, cx.now, &rules).await? {
        Polled::Taken(document) => decode_document(F::NAME, document)?,
        Polled::Missing => {
            // The retry of a redemption answered `temporarily_unavailable` though its
            // delete may have committed: answered once, from the noted request.
            if let Some(request) = in_doubt.claim(store.as_ref(), key, cx.now).await?
                && request.client_id == cx.client.client_id.as_str()
                && let Decision::Approved { subject, auth_time, sid, amr } = &request.decision
            {
                tracing::info!(client_id = %cx.client.client_id, "retry of an in-doubt redemption: answered once");
                return issue(cx, &request, subject.clone(), *auth_time, sid.clone(), amr.clone());
            }
            return Err(OAuthError::invalid_grant("unknown or already redeemed"));
        }
        // Decoded first, as every stored request: one this version cannot read is a
        // logged `server_error`, whoever polls it.
        Polled::Foreign(document) => {
            decode_document::<PendingAuthorization>(F::NAME, document)?;
            return Err(OAuthError::invalid_grant("issued to another client"));
        }
        Polled::Expired(document) => {
            decode_document::<PendingAuthorization>(F::NAME, document)?;
            return Err(OAuthError::expired_token("the request expired; start again"));
        }
        // RFC 8628 §3.5: a poll sooner than the interval gets `slow_down`, and the
        // interval grows by five seconds for the rest of the request.
        Polled::TooSoon { interval } => {
            return Err(OAuthError::slow_down(format!("poll at most every {interval} seconds")));
        }
        Polled::Waiting(document) => {
            let request: PendingAuthorization = decode_document(F::NAME, document)?;
            if request.decision != Decision::Pending {
                tracing::error!(what = F::NAME, "a decided request was left in place by a poll");
                return Err(OAuthError::server_error("the request could not be redeemed"));
            }
            return Err(OAuthError::authorization_pending("the user has not decided yet"));
        }
        Polled::InDoubt(document) => {
            let request: PendingAuthorization = decode_document(F::NAME, document)?;
            if matches!(request.decision, Decision::Approved { .. }) {
                in_doubt.note(store.clone(), key, &request, cx.now);
            }
            return Err(StoreError::in_doubt("a poll's redemption is in doubt").into());
        }
    };
    match &request.decision {
        Decision::Approved { subject, auth_time, sid, amr } => {
            issue(cx, &request, subject.clone(), *auth_time, sid.clone(), amr.clone())
        }
        Decision::Denied => Err(OAuthError::access_denied("the user denied the request")),
        Decision::Pending => {
            tracing::error!(what = F::NAME, "a pending request was taken by a poll");
            Err(OAuthError::server_error("the request could not be redeemed"))
        }
    }
}

/// The shapes of a decided request as stored ([`Decision`] is tagged by `status`): a
/// paced poll takes a request holding one of them (see [`PollRules::decided`]).
fn decided_shapes() -> Vec<serde_json::Value> {
    ["approved", "denied"]
        .into_iter()
        .map(|status| serde_json::json!({ "decision": { "status": status } }))
        .collect()
}

fn issue(
    cx: &GrantContext<'_>,
    request: &PendingAuthorization,
    subject: String,
    auth_time: Timestamp,
    sid: String,
    amr: Vec<String>,
) -> Result<Issue, OAuthError> {
    let grant_id = crate::model::GrantId(cx.rng.identifier());
    let audience = cx
        .catalog
        .grant_user_access(cx.client, Some(&request.scopes.join(" ")), &request.resources)?
        .audience;
    let acr = crate::mfa::acr_for(&amr, &request.acr_values);
    let facts = GrantFacts {
        grant_id: &grant_id,
        subject: &subject,
        scopes: &request.scopes,
        resources: &request.resources,
        auth_time,
        sid: &sid,
        amr: &amr,
        acr: Some(&acr),
    };
    let refresh = first_refresh(cx, &facts);
    Ok(Issue {
        subject,
        scopes: request.scopes.clone(),
        audience,
        user: Some(UserGrant { grant_id, auth_time, sid, nonce: None, refresh, amr, acr: Some(acr) }),
        act: None,
        issued_token_type: None,
        derived_grant: None,
    })
}

/// The approval a signed-in user gives.
#[must_use]
pub fn approval(session: &Session) -> Decision {
    Decision::Approved {
        subject: session.subject.clone(),
        auth_time: session.auth_time,
        sid: session.sid.clone(),
        amr: session.amr.clone(),
    }
}

/// Entries beyond which the local list starts over (bounded memory).
const MAX_IN_DOUBT: usize = 10_000;

/// Approved requests whose redemption was answered `temporarily_unavailable` while
/// the delete that redeems them may have committed (the store could not tell): kept
/// here and, once the store answers, in it for [`IN_DOUBT_WINDOW`], so the client's
/// next poll on any instance gets the tokens it never received instead of
/// `invalid_grant`. Claimed once, atomically in the store: of any number of retries
/// exactly one is answered.
#[derive(Default)]
pub struct InDoubtRedemptions {
    local: Mutex<HashMap<String, (Timestamp, PendingAuthorization)>>,
}

impl InDoubtRedemptions {
    fn key(key: &str) -> String {
        format!("redeemed-in-doubt:{key}")
    }

    /// Notes the redemption of `key` (holding `request`) as in doubt, here at once and
    /// in the store in the background (retried until it answers or the window passes).
    pub fn note(
        &self,
        store: Arc<dyn GrantStores>,
        key: &str,
        request: &PendingAuthorization,
        now: Timestamp,
    ) {
        {
            let mut local = self.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            local.retain(|_, (noted, _)| now - *noted <= IN_DOUBT_WINDOW);
            if local.len() >= MAX_IN_DOUBT {
                local.clear();
            }
            local.insert(key.to_owned(), (now, request.clone()));
        }
        tracing::warn!("redemption in doubt: the next poll within the window is answered once");
        let Ok(document) = serde_json::to_value(request) else { return };
        let note_key = Self::key(key);
        let expires_at = now + IN_DOUBT_WINDOW;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for _ in 0..IN_DOUBT_WINDOW * 4 {
                    if store.put_request(&note_key, &document, expires_at).await.is_ok() {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
            });
        }
    }

    /// The request noted in doubt under `key` within the window, claimed by this call
    /// (once, across instances); `None` when none is noted or it was claimed already.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn claim(
        &self,
        store: &dyn GrantStores,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<PendingAuthorization>, OAuthError> {
        let local = self.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).cloned();
        let noted = match local {
            Some((noted, request)) if now - noted <= IN_DOUBT_WINDOW => Some(request),
            _ => crate::store::decode_optional(
                "in-doubt redemption",
                store.request(&Self::key(key), now).await?,
            )?,
        };
        let Some(request) = noted else { return Ok(None) };
        let claim = format!("redeemed-in-doubt-claimed:{key}");
        if !store.remember_once(&claim, now + IN_DOUBT_WINDOW, now).await? {
            return Ok(None);
        }
        Ok(Some(request))
    }
}

#[cfg(test)]
mod tests {
    use super::{Decision, decided_shapes};
    use crate::grants::testing::{approved, decoupled_request};
    use crate::store::contains;

    /// A poll takes a request exactly when the user decided it: the shapes the store
    /// looks for must be what serde writes for an approval and a denial, and never
    /// what it writes for a pending request.
    #[test]
    fn the_decided_shapes_are_what_serde_writes_for_a_decision() {
        let stored = |decision| serde_json::to_value(decoupled_request("tv", 100, decision)).unwrap();
        let is_decided =
            |document: &serde_json::Value| decided_shapes().iter().any(|shape| contains(document, shape));
        assert!(is_decided(&stored(approved(100))));
        assert!(is_decided(&stored(Decision::Denied)));
        assert!(!is_decided(&stored(Decision::Pending)));
    }
}
