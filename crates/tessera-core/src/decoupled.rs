//! What the device flow (RFC 8628) and CIBA share: a request the user approves on
//! another device while the client polls. The requests live in the store's
//! [`DeviceStore`](crate::store::DeviceStore) and [`CibaStore`](crate::store::CibaStore):
//! a decision is one conditional write there, and a poll paces and redeems in one
//! atomic step (the pace is kept apart from the request, so a poll can never overwrite
//! the user's decision). A poll is a grant's (`grants/polling.rs`); what the pages that
//! decide share is here.

use crate::OAuthError;
use crate::store::Session;

pub use crate::model::{Decision, KEPT_AFTER_EXPIRY, PendingAuthorization, PingTarget, SLOW_DOWN_STEP};
pub use crate::store::{CibaRequests, DecoupledFlow, DeviceRequests};

/// Checks a decision on `request` before it is recorded: the request must be pending
/// and unexpired, and an approval is a sign-in for the client, so its `acr_values` and
/// `require_mfa` hold for the approving session as at `/authorize` (the page then steps
/// it up). The store's decision is then one conditional write that a racing decision
/// makes lose.
///
/// # Errors
/// `invalid_request` when the request is gone or decided; `expired_token` when it
/// expired; the step-up error when the approving sign-in is not strong enough.
pub async fn check_decision(
    cx: &crate::Provider,
    request: Option<&PendingAuthorization>,
    decision: &Decision,
) -> Result<(), OAuthError> {
    let now = cx.clock.now();
    let Some(request) = request else {
        return Err(OAuthError::invalid_request("unknown request"));
    };
    if request.expires_at <= now {
        return Err(OAuthError::expired_token("the request expired"));
    }
    if request.decision != Decision::Pending {
        return Err(OAuthError::invalid_request("the request was already decided"));
    }
    if let Decision::Approved { subject, amr, .. } = decision {
        let client = cx.clients.get(&request.client_id, now).await?;
        let needed = crate::mfa::needed(cx, subject, amr, &request.acr_values, client.as_deref()).await?;
        if let Some(error) = needed.error() {
            tracing::info!(subject, ?needed, "approval refused until the sign-in is stronger");
            return Err(error);
        }
    }
    Ok(())
}

/// A decision the store did not record: another decision (or a redemption) came first.
#[must_use]
pub fn lost_decision() -> OAuthError {
    OAuthError::invalid_request("the request was already decided")
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
