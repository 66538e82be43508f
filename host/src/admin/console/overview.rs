//! `GET /api/overview`: everything the console's overview page shows, in
//! one answer, so a poll every two seconds is one request. Nothing here
//! reads the journal or scans a queue: its cost does not grow with traffic.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::rates::AnswerSeries;
use crate::admin::AdminState;
use crate::interface::InterfaceStatus;
use crate::journal::Journal;
use crate::outbox::now_ms;
use crate::plugin::PluginStatus;

/// Connections listed per interface; more are counted, not listed.
const MAX_CONNECTIONS_SHOWN: usize = 100;

#[derive(Debug, Serialize)]
pub struct Overview {
    pub now_ms: u64,
    pub ready: bool,
    /// Why `/readyz` says not ready while the server runs (a disk nearly full).
    pub not_ready_because: Option<String>,
    /// Messages answered per second, by what the sender got.
    pub answers: AnswerSeries,
    pub interfaces: Vec<InterfaceOverview>,
    pub connectors: Vec<ConnectorOverview>,
    pub plugins: Vec<PluginStatus>,
    pub journal_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct InterfaceOverview {
    #[serde(flatten)]
    pub status: InterfaceStatus,
    /// Open connections, of which `connections` lists the first 100.
    pub connections_open: usize,
}

#[derive(Debug, Serialize)]
pub struct ConnectorOverview {
    pub connector: String,
    pub outbox: u64,
    pub dead_letter: u64,
    pub delivered: u64,
    /// Messages per second over the last minute.
    pub delivered_per_second: f64,
    pub last_delivered_ms: Option<u64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<u64>,
}

pub async fn overview(State(state): State<AdminState>) -> Json<Overview> {
    let interfaces = match &state.interfaces {
        Some(interfaces) => interfaces.status().await,
        None => Vec::new(),
    };
    let interfaces = interfaces
        .into_iter()
        .map(|mut status| {
            let connections_open = status.connections.len();
            status.connections.truncate(MAX_CONNECTIONS_SHOWN);
            InterfaceOverview { status, connections_open }
        })
        .collect();
    let deliveries = state.queues.deliveries();
    let connectors = state
        .queues
        .depths()
        .into_iter()
        .map(|depth| {
            let delivery = deliveries.iter().find(|d| d.connector == depth.connector).cloned().unwrap_or_default();
            ConnectorOverview {
                delivered_per_second: state.rates.delivery_rate(&depth.connector),
                connector: depth.connector,
                outbox: depth.outbox,
                dead_letter: depth.dead_letter,
                delivered: delivery.delivered,
                last_delivered_ms: delivery.last_delivered_ms,
                last_error: delivery.last_error,
                last_error_ms: delivery.last_error_ms,
            }
        })
        .collect();
    let not_ready_because = state.disk.as_ref().and_then(|disk| disk.shortage());
    Json(Overview {
        now_ms: now_ms(),
        ready: state.ready.load(Ordering::SeqCst) && not_ready_because.is_none(),
        not_ready_because,
        answers: state.rates.answers(),
        interfaces,
        connectors,
        plugins: state.catalog.statuses(),
        journal_bytes: state.journal.as_ref().map(Journal::disk_bytes),
    })
}
