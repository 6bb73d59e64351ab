//! Polls of device and CIBA requests (RFC 8628 §3.4–3.5, CIBA Core §7.3, §11): each
//! one paced and, once the user has decided, redeemed, in one atomic step.

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
    /// The shapes of a decided request: a paced poll takes (deletes and returns) a
    /// request that contains any one of them, and leaves any other in place.
    pub decided: Vec<serde_json::Value>,
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

/// Polls: pacing and redemption in one step, one pace row per polled request.
#[async_trait]
pub trait PollStore: Send + Sync {
    /// One poll of the request stored under `key` (a [`super::RequestStore`] key), in
    /// one atomic step: the request is found live, checked against `rules` (owner,
    /// own expiry), the poll paced, and a decided request taken.
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

/// Whether a paced poll takes `document`.
#[must_use]
pub fn is_decided(document: &serde_json::Value, rules: &PollRules) -> bool {
    rules.decided.iter().any(|shape| contains(document, shape))
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
