//! The admin endpoint as `sluice serve` runs it: bound, serving in the
//! background, its address in the data directory, readiness withdrawn when
//! the drain starts.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use tokio_util::sync::{CancellationToken, DropGuard};

use super::addr_file::AddrFile;
use super::{AdminState, bind};
use crate::config::Config;

/// Stops the endpoint and removes its address file when dropped, so every
/// way out of the server (a clean stop or an error) takes it down.
pub struct RunningAdmin {
    addr: SocketAddr,
    _stop: DropGuard,
    _file: AddrFile,
}

impl RunningAdmin {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Starts the endpoint of `config.admin`; `None` when it is `off`. It keeps
/// serving while the server drains (`/readyz` then answers 503).
pub fn start(config: &Config, state: AdminState, shutdown: &CancellationToken) -> anyhow::Result<Option<RunningAdmin>> {
    let Some(server) = bind(&config.admin)? else {
        tracing::info!("admin endpoint off (admin.listen = \"off\")");
        return Ok(None);
    };
    let addr = server.local_addr();
    let file = AddrFile::write(&config.data_dir, addr)?;
    let stop = CancellationToken::new();
    state.rates.start(state.metrics.clone(), state.queues.clone(), stop.clone());
    let ready = state.ready.clone();
    let draining = shutdown.clone();
    tokio::spawn(async move {
        draining.cancelled().await;
        ready.store(false, Ordering::SeqCst);
    });
    let serving = server.serve(state, stop.clone());
    tokio::spawn(async move {
        if let Err(err) = serving.await {
            tracing::error!("admin endpoint on {addr} stopped: {err:#}");
        }
    });
    tracing::info!(%addr, "admin endpoint listening");
    Ok(Some(RunningAdmin { addr, _stop: stop.drop_guard(), _file: file }))
}
