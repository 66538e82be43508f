//! The admin HTTP endpoint (DESIGN §7): health probes, Prometheus metrics,
//! and the JSON API through which the CLI works on a running server (its
//! store is locked by the server). Loopback by default; with `admin.token`
//! every route but the probes needs the bearer token.

mod addr_file;
mod api;
mod auth;
mod console;
mod error;
mod health;
mod metrics;
mod running;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use axum::Router;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::config::AdminConfig;
use crate::interface::Interfaces;
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::outbox::{Queues, Rejected};
use crate::plugin::Catalog;

pub use addr_file::{ADDR_FILE, AddrFile, read as read_addr_file};
pub use console::Rates;
pub use error::ApiError;
pub use running::{RunningAdmin, start};

/// What the handlers read and act on.
#[derive(Clone)]
pub struct AdminState {
    pub queues: Queues,
    pub metrics: Arc<Metrics>,
    pub catalog: Arc<Catalog>,
    /// Set by the server once the MLLP listener accepts; cleared when it drains.
    pub ready: Arc<AtomicBool>,
    /// The running interfaces (`None` in tests without listeners).
    pub interfaces: Option<Arc<Interfaces>>,
    /// Messages the interfaces refused (`None` in tests without them).
    pub rejected: Option<Rejected>,
    /// Every message received (`None` in tests without a store).
    pub journal: Option<Journal>,
    /// What the console's live chart and delivery rates show, sampled each second.
    pub rates: Arc<Rates>,
    /// Free space on the data directory (`None` in tests without a store on disk).
    pub disk: Option<Arc<crate::outbox::DiskSpace>>,
}

/// A bound, not yet serving, admin listener.
pub struct AdminServer {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    token: Option<Arc<str>>,
}

/// Binds `admin.listen`; `None` when it is `off`.
pub fn bind(config: &AdminConfig) -> anyhow::Result<Option<AdminServer>> {
    let Some(addr) = config.listen_addr() else { return Ok(None) };
    let addr =
        addr.map_err(|err| anyhow::anyhow!("configuration key `admin.listen`: `{}` is not an address like 127.0.0.1:9275, or `off` ({err})", config.listen))?;
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("configuration key `admin.listen`: cannot listen on {addr}"))?;
    // Accepted through tokio, which needs a non-blocking socket.
    listener.set_nonblocking(true).context("admin listener")?;
    let addr = listener.local_addr().context("admin listener")?;
    Ok(Some(AdminServer { listener, addr, token: config.token.as_deref().map(Arc::from) }))
}

impl AdminServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` is cancelled, then finishes the requests in flight.
    pub async fn serve(self, state: AdminState, shutdown: CancellationToken) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::from_std(self.listener).context("admin listener")?;
        // The client's address reaches the handlers: actions are audited with it.
        axum::serve(listener, router(state, self.token).into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .with_context(|| format!("admin endpoint on {}", self.addr))
    }
}

/// Every route; all but the health probes and the console's (data-free)
/// pages behind the token (when one is set).
pub fn router(state: AdminState, token: Option<Arc<str>>) -> Router {
    let guarded = Router::new()
        .route("/metrics", get(metrics::metrics))
        .route("/api/overview", get(console::overview))
        .route("/api/outbox", get(api::outbox_depths))
        .route("/api/outbox/{connector}", get(api::outbox))
        .route("/api/dlq/{connector}", get(api::dead_letters))
        .route("/api/dlq/{connector}/{id}", get(api::dead_letter))
        .route("/api/dlq/{connector}/replay", post(api::replay))
        .route("/api/dlq/{connector}/purge", post(api::purge))
        .route("/api/plugins", get(api::plugins))
        .route("/api/interfaces", get(api::interfaces))
        .route("/api/rejected", get(api::rejected))
        .route("/api/rejected/{id}", get(api::rejected_one))
        .route("/api/messages", get(api::messages))
        .route("/api/messages/{id}", get(api::message))
        .route("/api/messages/{id}/resend", post(api::resend))
        .route_layer(axum::middleware::from_fn_with_state(token, auth::require_token));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(console::routes())
        .merge(guarded)
        .fallback(|uri: axum::http::Uri| async move { ApiError::NotFound(format!("no such endpoint: {uri}")) })
        .with_state(state)
}

#[cfg(test)]
mod tests;
