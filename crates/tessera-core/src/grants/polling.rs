//! A poll at the token endpoint for a request the user decides on another device (the
//! device flow, RFC 8628 §3.4–3.5, and CIBA Core §11), shared by both grants.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{GrantContext, GrantFacts, IN_DOUBT_WINDOW, Issue, UserGrant, first_refresh};
use crate::model::{Decision, PendingAuthorization};
use crate::store::{
    DecoupledFlow, DecoupledPoll, DecoupledRequests, Flow, FlowStore, GrantStores, StoreError,
};
use crate::{OAuthError, Timestamp};

/// One poll at the token endpoint (RFC 8628 §3.4, §3.5; CIBA Core §11): the tokens'
/// grant when approved (redeemed exactly once), else the error telling the client
/// what to do.
///
/// # Errors
/// `authorization_pending`, `slow_down`, `access_denied`, `expired_token`, or
/// `invalid_grant` for an unknown, redeemed or foreign request.
pub async fn poll<F: DecoupledFlow>(
    cx: &GrantContext<'_>,
    in_doubt: &InDoubtRedemptions,
    id: &str,
    interval: i64,
) -> Result<Issue, OAuthError> {
    let store = cx.store;
    // In-doubt notes are kept under the request's own key.
    let key = &F::key(id);
    // One atomic step of the store finds the request, checks that it is this client's
    // and not expired, paces the poll, and takes a decided request: of racing polls
    // on any instance one is in time, and only that one can redeem.
    let polled =
        DecoupledRequests::<F>::poll_request(store.as_ref(), id, &cx.client.client_id, interval, cx.now);
    let request = match polled.await? {
        DecoupledPoll::Taken(request) => request,
        DecoupledPoll::Unknown => {
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
        DecoupledPoll::Foreign => return Err(OAuthError::invalid_grant("issued to another client")),
        DecoupledPoll::Expired => return Err(OAuthError::expired_token("the request expired; start again")),
        // RFC 8628 §3.5: a poll sooner than the interval gets `slow_down`, and the
        // interval grows by five seconds for the rest of the request.
        DecoupledPoll::TooSoon { interval } => {
            return Err(OAuthError::slow_down(format!("poll at most every {interval} seconds")));
        }
        DecoupledPoll::Pending => {
            return Err(OAuthError::authorization_pending("the user has not decided yet"));
        }
        DecoupledPoll::InDoubt(request) => {
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
    let acr = crate::mfa::levels::acr_for(&amr, &request.acr_values);
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

/// Approved requests whose redemption is in doubt, by the request's store key.
pub struct RedemptionsInDoubt;

impl Flow for RedemptionsInDoubt {
    const NAMESPACE: &'static str = "redeemed-in-doubt:";
    const NAME: &'static str = "redemption in doubt";
    type Document = PendingAuthorization;
}

impl InDoubtRedemptions {
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
        let (key, request) = (key.to_owned(), request.clone());
        let expires_at = now + IN_DOUBT_WINDOW;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let notes = FlowStore::<RedemptionsInDoubt, dyn GrantStores>::new(store.as_ref());
                for _ in 0..IN_DOUBT_WINDOW * 4 {
                    if notes.start(&key, &request, expires_at).await.is_ok() {
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
            _ => FlowStore::<RedemptionsInDoubt, dyn GrantStores>::new(store).read(key, now).await?,
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
    use std::sync::Arc;

    use super::InDoubtRedemptions;
    use crate::grants::IN_DOUBT_WINDOW;
    use crate::grants::testing::{approved, decoupled_request};
    use crate::store::GrantStores;
    use crate::store::memory::MemoryStore;

    const KEY: &str = "device:in-doubt";

    /// Lets the background note reach the store.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_redemption_in_doubt_is_answered_once_on_any_instance() {
        let store: Arc<dyn GrantStores> = Arc::new(MemoryStore::default());
        let request = decoupled_request("tv", 1_000, approved(1_000));
        let (noting, other) = (InDoubtRedemptions::default(), InDoubtRedemptions::default());
        noting.note(store.clone(), KEY, &request, 1_000);
        settle().await;
        // The retry may land on another instance: it finds the note in the store.
        assert_eq!(other.claim(store.as_ref(), KEY, 1_010).await.unwrap(), Some(request));
        assert_eq!(noting.claim(store.as_ref(), KEY, 1_011).await.unwrap(), None, "claimed once");
        assert_eq!(other.claim(store.as_ref(), KEY, 1_012).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_note_lapses_after_the_window_and_names_only_its_own_request() {
        let store: Arc<dyn GrantStores> = Arc::new(MemoryStore::default());
        let request = decoupled_request("tv", 1_000, approved(1_000));
        let noting = InDoubtRedemptions::default();
        noting.note(store.clone(), KEY, &request, 1_000);
        settle().await;
        assert_eq!(noting.claim(store.as_ref(), "device:another", 1_001).await.unwrap(), None);
        let late = InDoubtRedemptions::default();
        assert_eq!(late.claim(store.as_ref(), KEY, 1_000 + IN_DOUBT_WINDOW + 1).await.unwrap(), None);
        assert_eq!(noting.claim(store.as_ref(), KEY, 1_000 + IN_DOUBT_WINDOW + 1).await.unwrap(), None);
    }
}
