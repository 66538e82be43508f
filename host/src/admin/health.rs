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
pub async fn readyz(State(state): State<AdminState>) -> (StatusCode, String) {
    if !state.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into());
    }
    // New messages would get AE: a load balancer should send them elsewhere.
    if let Some(reason) = state.disk.as_ref().and_then(|disk| disk.shortage()) {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n"));
    }
    (StatusCode::OK, "ready\n".into())
}
