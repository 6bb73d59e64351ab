//! Liveness and readiness for orchestrators.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tracing::warn;

use crate::AppState;

/// Readiness answers within this, whatever the store does: a pool waiting for a
/// dead database must not make the probe hang (it then counts as not ready).
const READINESS_BUDGET: Duration = Duration::from_secs(1);

/// Alive: the process answers.
pub(super) async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the store takes a read and a committed write, and a key can sign; 503
/// (with `Retry-After`) otherwise, within [`READINESS_BUDGET`].
pub(super) async fn readyz(State(provider): State<AppState>) -> Response {
    let check = async {
        if let Err(error) = provider.store.ping().await {
            warn!(%error, "not ready: store");
            return Err("store unavailable");
        }
        match provider.keys.key_set(provider.clock.now()).await {
            Ok(keys) if keys.signer().is_ok() => Ok(()),
            _ => Err("no signing key"),
        }
    };
    let outcome = match tokio::time::timeout(READINESS_BUDGET, check).await {
        Ok(outcome) => outcome,
        Err(_) => {
            warn!("not ready: the store did not answer within a second");
            Err("store unavailable")
        }
    };
    match outcome {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(reason) => {
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, reason).into_response();
            crate::error::unavailable_headers(&mut response);
            response
        }
    }
}
