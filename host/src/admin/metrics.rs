//! `GET /metrics`: every series in the OpenMetrics text format, with the
//! queue depths read from the store's in-memory counts at scrape time.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AdminState;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    // Depths are kept in memory by the queues: no store scan, no blocking.
    state.metrics.set_queue_depths(&state.queues.depths());
    if let Some(journal) = &state.journal {
        // RocksDB properties from memory: cheap enough for every scrape.
        state.metrics.journal_bytes.set(i64::try_from(journal.disk_bytes()).unwrap_or(i64::MAX));
    }
    ([(header::CONTENT_TYPE, OPENMETRICS)], state.metrics.encode())
}
