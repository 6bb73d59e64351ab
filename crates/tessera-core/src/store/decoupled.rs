//! What the device flow's and CIBA's stores share ([`super::DeviceStore`],
//! [`super::CibaStore`]): a request the user decides on another device while the client
//! polls. A decision is one conditional write (pending -> decided); a poll paces and,
//! once the user has decided, redeems, in one atomic step of the store
//! ([`PollStore::poll`]).

use async_trait::async_trait;

use super::{Flow, FlowStore, PollRules, PollStore, Polled, RequestStore, decode_document};
use crate::model::{ClientId, Decision, KEPT_AFTER_EXPIRY, PendingAuthorization, SLOW_DOWN_STEP};
use crate::{OAuthError, Timestamp};

/// A flow whose requests the user decides on another device while the client polls.
pub trait DecoupledFlow: Flow<Document = PendingAuthorization> + Send + Sync + 'static {}

/// What one poll found and did (RFC 8628 §3.4, §3.5; CIBA Core §11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecoupledPoll {
    /// No live request: never issued, redeemed, or expired long ago.
    Unknown,
    /// Another client's request: nothing changed.
    Foreign,
    /// The request expired: nothing changed.
    Expired,
    /// Sooner than the interval: `slow_down`, with the interval from now on.
    TooSoon { interval: i64 },
    /// Paced; the user has not decided yet.
    Pending,
    /// Paced; the decided request, redeemed (deleted) by this poll: of racing polls on
    /// any instance exactly one gets it.
    Taken(PendingAuthorization),
    /// Paced; the decided request, whose redemption was sent but whose outcome the
    /// store cannot read now: it may have been redeemed.
    InDoubt(PendingAuthorization),
}

/// The requests of decoupled flow `F`. Implemented for every store over its table of
/// flow documents and its polls ([`RequestStore`], [`PollStore`]).
#[async_trait]
pub trait DecoupledRequests<F: DecoupledFlow>: Send + Sync {
    /// The request `id` (expired ones included, while kept for late polls).
    ///
    /// # Errors
    /// When the store fails, or the stored request does not decode (`server_error`).
    async fn decoupled_request(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<PendingAuthorization>, OAuthError>;

    /// One poll by `client_id` of request `id`, with `interval` the flow's first
    /// polling interval: found, checked (owner, expiry), paced and, when decided,
    /// redeemed, in one atomic step.
    ///
    /// # Errors
    /// When the store fails, or the stored request does not decode (`server_error`).
    async fn poll_request(
        &self,
        id: &str,
        client_id: &ClientId,
        interval: i64,
        now: Timestamp,
    ) -> Result<DecoupledPoll, OAuthError>;
}

#[async_trait]
impl<F: DecoupledFlow, S: RequestStore + PollStore + ?Sized> DecoupledRequests<F> for S {
    async fn decoupled_request(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<PendingAuthorization>, OAuthError> {
        FlowStore::<F, S>::new(self).read(id, now).await
    }

    async fn poll_request(
        &self,
        id: &str,
        client_id: &ClientId,
        interval: i64,
        now: Timestamp,
    ) -> Result<DecoupledPoll, OAuthError> {
        let rules = PollRules {
            owner: serde_json::json!({ "client_id": client_id }),
            kept_after_expiry: KEPT_AFTER_EXPIRY,
            decided: decided_shapes(),
            interval,
            step: SLOW_DOWN_STEP,
            pace_until: now + 2 * KEPT_AFTER_EXPIRY,
        };
        // Every document is decoded, whatever the answer: one this version cannot read
        // is a logged `server_error` for whoever polls it, never "expired".
        let decode = |document| decode_document::<PendingAuthorization>(F::NAME, document);
        Ok(match PollStore::poll(self, &F::key(id), now, &rules).await? {
            Polled::Missing => DecoupledPoll::Unknown,
            Polled::Foreign(document) => {
                decode(document)?;
                DecoupledPoll::Foreign
            }
            Polled::Expired(document) => {
                decode(document)?;
                DecoupledPoll::Expired
            }
            Polled::TooSoon { interval } => DecoupledPoll::TooSoon { interval },
            Polled::Waiting(document) => {
                if decode(document)?.decision != Decision::Pending {
                    tracing::error!(what = F::NAME, "a decided request was left in place by a poll");
                    return Err(OAuthError::server_error("the request could not be redeemed"));
                }
                DecoupledPoll::Pending
            }
            Polled::Taken(document) => DecoupledPoll::Taken(decode(document)?),
            Polled::InDoubt(document) => DecoupledPoll::InDoubt(decode(document)?),
        })
    }
}

/// Keeps a new request under `id`, past its own expiry so a late poll learns
/// `expired_token`.
pub(super) async fn start<F: DecoupledFlow, S: RequestStore + ?Sized>(
    store: &S,
    id: &str,
    request: &PendingAuthorization,
) -> Result<(), OAuthError> {
    FlowStore::<F, S>::new(store).start(id, request, request.expires_at + KEPT_AFTER_EXPIRY).await
}

/// Pending -> decided: `Some(request as decided)` when this call decided it; `None` when
/// the request is gone, expired or decided already. The write is one conditional
/// statement against the pending version read, so of racing decisions exactly one wins
/// (and a redemption in between makes it lose).
pub(super) async fn decide<F: DecoupledFlow, S: RequestStore + ?Sized>(
    store: &S,
    id: &str,
    decision: &Decision,
    now: Timestamp,
) -> Result<Option<PendingAuthorization>, OAuthError> {
    let requests = FlowStore::<F, S>::new(store);
    let Some(read) = requests.read_versioned(id, now).await? else { return Ok(None) };
    if read.document.decision != Decision::Pending || read.document.expires_at <= now {
        return Ok(None);
    }
    let mut decided = read.document.clone();
    decided.decision = decision.clone();
    Ok(requests.transition(id, &read, &decided, now).await?.then_some(decided))
}

/// The shapes of a decided request as stored ([`Decision`] is tagged by `status`): a
/// paced poll takes a request holding one of them (see [`PollRules::decided`]).
fn decided_shapes() -> Vec<serde_json::Value> {
    ["approved", "denied"]
        .into_iter()
        .map(|status| serde_json::json!({ "decision": { "status": status } }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::decided_shapes;
    use crate::grants::testing::{approved, decoupled_request};
    use crate::model::Decision;
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
