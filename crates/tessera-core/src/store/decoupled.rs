//! What the device flow's and CIBA's stores share ([`super::DeviceStore`],
//! [`super::CibaStore`]): a request the user decides on another device while the client
//! polls. A decision is one conditional write (pending -> decided); a poll paces and,
//! once the user has decided, redeems, in one atomic step of the store
//! ([`PollStore::poll`]).

use async_trait::async_trait;

use super::{Flow, PENDING, PollRules, PollStore, Polled, decode_document, decode_optional};
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
/// polled requests ([`PollStore`]).
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
impl<F: DecoupledFlow, S: PollStore + ?Sized> DecoupledRequests<F> for S {
    async fn decoupled_request(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<PendingAuthorization>, OAuthError> {
        decode_optional(F::NAME, self.polled(&F::key(id), now).await?)
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
            decided: [APPROVED, DENIED].map(str::to_owned).to_vec(),
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

/// The stored states of a decision (the `status` its serde tag writes).
const APPROVED: &str = "approved";
const DENIED: &str = "denied";

/// The state column of a request holding `decision`.
fn state_of(decision: &Decision) -> &'static str {
    match decision {
        Decision::Pending => PENDING,
        Decision::Approved { .. } => APPROVED,
        Decision::Denied => DENIED,
    }
}

/// Keeps a new request under `id`, past its own expiry so a late poll learns
/// `expired_token`.
pub(crate) async fn start<F: DecoupledFlow, S: PollStore + ?Sized>(
    store: &S,
    id: &str,
    request: &PendingAuthorization,
) -> Result<(), OAuthError> {
    let document = serde_json::to_value(request).map_err(OAuthError::server_error)?;
    let kept_until = request.expires_at + KEPT_AFTER_EXPIRY;
    Ok(store.put_polled(&F::key(id), state_of(&request.decision), &document, kept_until).await?)
}

/// Pending -> decided: `Some(request as decided)` when this call decided it; `None` when
/// the request is gone, expired or decided already. The write is one conditional
/// statement (`… WHERE state = 'pending'`), so of racing decisions exactly one wins (and
/// a redemption in between makes it lose).
pub(super) async fn decide<F: DecoupledFlow, S: PollStore + ?Sized>(
    store: &S,
    id: &str,
    decision: &Decision,
    now: Timestamp,
) -> Result<Option<PendingAuthorization>, OAuthError> {
    let key = F::key(id);
    let Some(read) = decode_optional::<PendingAuthorization>(F::NAME, store.polled(&key, now).await?)? else {
        return Ok(None);
    };
    if read.decision != Decision::Pending || read.expires_at <= now || *decision == Decision::Pending {
        return Ok(None);
    }
    let decided = PendingAuthorization { decision: decision.clone(), ..read };
    let document = serde_json::to_value(&decided).map_err(OAuthError::server_error)?;
    Ok(store.decide_polled(&key, state_of(decision), &document, now).await?.then_some(decided))
}

#[cfg(test)]
mod tests {
    use super::state_of;
    use crate::grants::testing::{approved, decoupled_request};
    use crate::model::Decision;

    /// The state column says what the document's decision says: the names must be
    /// what serde writes as the decision's `status`.
    #[test]
    fn a_request_s_state_is_its_decision_s_status() {
        for decision in [Decision::Pending, approved(100), Decision::Denied] {
            let stored = serde_json::to_value(decoupled_request("tv", 100, decision.clone())).unwrap();
            assert_eq!(stored["decision"]["status"], state_of(&decision));
        }
    }
}
