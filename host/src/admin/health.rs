//! Liveness and readiness probes, never behind the token.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;

use super::AdminState;

/// 200 while the process runs and answers at all.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 once the MLLP listener accepts, 503 while starting or draining.
pub async fn readyz(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::SeqCst) { (StatusCode::OK, "ready\n") } else { (StatusCode::SERVICE_UNAVAILABLE, "not ready\n") }
}
