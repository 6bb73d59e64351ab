//! Device and CIBA requests as the store keeps them (RFC 8628 §3.4–3.5, CIBA Core §7.3,
//! §11): a row per request with its state (`pending` until the user decides), decided
//! by one conditional statement, and polls that pace and, once decided, redeem in one
//! atomic step.

use async_trait::async_trait;

use super::StoreResult;
use crate::Timestamp;

/// The rules of one poll, set by the flow (device or CIBA) and applied by the store.
#[derive(Debug, Clone, PartialEq)]
pub struct PollRules {
    /// Fields the request must hold (see [`contains`]) for this poller: its client.
    /// Another client's poll is [`Polled::Foreign`] and paces nothing.
    pub owner: serde_json::Value,
    /// A request's row outlives the request by this long, so that a late poll learns
    /// it expired: a poll within that time is [`Polled::Expired`] and paces nothing.
    pub kept_after_expiry: i64,
    /// The states of a decided request: a paced poll takes (deletes and returns) a
    /// request in one of them, and leaves any other (pending, or one this version does
    /// not know) in place.
    pub decided: Vec<String>,
    /// The first interval, and what a too-soon poll adds to it (RFC 8628 §3.5).
    pub interval: i64,
    pub step: i64,
    /// The pace is kept until then.
    pub pace_until: Timestamp,
}

/// What one poll found and did.
#[derive(Debug, Clone, PartialEq)]
pub enum Polled {
    /// No live request under the key (never issued, redeemed, or long expired).
    Missing,
    /// The request (as stored) is another client's: nothing changed.
    Foreign(serde_json::Value),
    /// The request (as stored) has expired itself: nothing changed.
    Expired(serde_json::Value),
    /// Sooner than the interval: `slow_down`, with the interval from now on.
    TooSoon { interval: i64 },
    /// Paced; the request, not decided yet (or in no shape the rules know), stays.
    Waiting(serde_json::Value),
    /// Paced; the decided request, deleted by this poll: of racing polls exactly one
    /// gets it.
    Taken(serde_json::Value),
    /// Paced; the decided request, whose delete was sent but whose outcome the store
    /// cannot read now (the connection went at its commit): it may have been taken.
    InDoubt(serde_json::Value),
}

/// The state of a request the user has not decided yet.
pub const PENDING: &str = "pending";

/// Polled requests (their own table, `decoupled_requests`) and their polls: pacing and
/// redemption in one step, one pace row per polled request.
#[async_trait]
pub trait PollStore: Send + Sync {
    /// Stores a request under `key` in `state` until `expires_at`, replacing one there.
    async fn put_polled(
        &self,
        key: &str,
        state: &str,
        document: &serde_json::Value,
        expires_at: Timestamp,
    ) -> StoreResult<()>;

    /// The request under `key`, unless its row expired.
    async fn polled(&self, key: &str, now: Timestamp) -> StoreResult<Option<serde_json::Value>>;

    /// Pending -> `state`, with `document` (the request as decided), in one conditional
    /// statement (`UPDATE … WHERE key = ? AND state = 'pending' AND expires_at > ?`): of
    /// any number of racing decisions exactly one returns `true`; a gone, expired or
    /// decided request gives `false`.
    async fn decide_polled(
        &self,
        key: &str,
        state: &str,
        document: &serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<bool>;

    /// One poll of the request stored under `key`, in one atomic step: the request is
    /// found live, checked against `rules` (owner, own expiry), the poll paced, and a
    /// decided request taken.
    ///
    /// Pacing (RFC 8628 §3.5): a poll less than the current interval after the
    /// previous one is too soon and grows the interval by `rules.step`; the first poll
    /// of a request starts at `rules.interval` and is never too soon; the pace is kept
    /// until `rules.pace_until`. Of polls racing at one moment, on one instance or
    /// many, exactly one is in time, and only that one can take the request.
    async fn poll(&self, key: &str, now: Timestamp, rules: &PollRules) -> StoreResult<Polled>;
}

/// Whether `document` holds `pattern`: every field of a pattern object present with
/// a value that holds the pattern's value, other values equal. PostgreSQL's
/// `jsonb @> jsonb` for objects and scalars; the stores without it use this.
#[must_use]
pub fn contains(document: &serde_json::Value, pattern: &serde_json::Value) -> bool {
    match (document, pattern) {
        (serde_json::Value::Object(document), serde_json::Value::Object(pattern)) => {
            pattern.iter().all(|(key, value)| document.get(key).is_some_and(|field| contains(field, value)))
        }
        _ => document == pattern,
    }
}

/// The answer a poll of `document` (stored until `row_expires_at`) gets without being
/// paced, if any: for the stores that decide in code, inside their one lock or write
/// transaction (in memory, SQLite).
#[must_use]
pub fn unpaced_answer(
    document: &serde_json::Value,
    row_expires_at: Timestamp,
    now: Timestamp,
    rules: &PollRules,
) -> Option<Polled> {
    if !contains(document, &rules.owner) {
        return Some(Polled::Foreign(document.clone()));
    }
    if row_expires_at - rules.kept_after_expiry <= now {
        return Some(Polled::Expired(document.clone()));
    }
    None
}

/// Whether a paced poll takes a request in `state`.
#[must_use]
pub fn is_decided(state: &str, rules: &PollRules) -> bool {
    rules.decided.iter().any(|decided| decided == state)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::contains;

    #[test]
    fn containment_is_postgresql_s_for_objects_and_scalars() {
        let document = json!({ "client_id": "tv", "decision": { "status": "approved", "subject": "alice" } });
        assert!(contains(&document, &json!({})));
        assert!(contains(&document, &json!({ "client_id": "tv" })));
        assert!(contains(&document, &json!({ "decision": { "status": "approved" } })));
        assert!(!contains(&document, &json!({ "decision": { "status": "denied" } })));
        assert!(!contains(&document, &json!({ "client_id": "other" })));
        assert!(!contains(&document, &json!({ "missing": null })));
        assert!(!contains(
            &json!({ "decision": "approved" }),
            &json!({ "decision": { "status": "approved" } })
        ));
    }
}
