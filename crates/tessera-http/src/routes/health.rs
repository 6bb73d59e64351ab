//! Liveness and readiness for orchestrators.

use axum::extract::State;
use axum::http::StatusCode;
use tracing::warn;

use crate::AppState;

/// Alive: the process answers.
pub(super) async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the store answers and a key can sign.
pub(super) async fn readyz(State(provider): State<AppState>) -> (StatusCode, &'static str) {
    if let Err(error) = provider.store.ping().await {
        warn!(%error, "not ready: store");
        return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable");
    }
    match provider.keys.key_set(provider.clock.now()).await {
        Ok(keys) if keys.signer().is_ok() => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "no signing key"),
    }
}
