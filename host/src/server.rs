//! `sluice serve`: opens the store, loads the plugins and watches their
//! folder, starts the delivery workers, the listener and the admin endpoint,
//! and on SIGINT or SIGTERM drains: stop accepting, let connections finish
//! the message they are on (up to `shutdown_timeout`), stop the committer,
//! flush, exit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{AdminState, RunningAdmin};
use crate::config::Config;
use crate::delivery::Delivery;
use crate::metrics::Metrics;
use crate::mllp::{ConnectionLimits, Listener};
use crate::outbox::{Store, StoreOptions};
use crate::pipeline::{Pipeline, Rules};
use crate::plugin::Catalog;

/// The addresses `sluice serve` is reachable at.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub mllp: SocketAddr,
    /// `None` when `admin.listen` is `off`.
    pub admin: Option<SocketAddr>,
}

/// Runs the engine until `shutdown` is cancelled. `on_ready` gets the bound
/// addresses once the listener accepts connections.
pub async fn run(config: Config, shutdown: CancellationToken, on_ready: impl FnOnce(Bound)) -> anyhow::Result<()> {
    let connectors: Vec<Arc<str>> = config.connectors.keys().map(|name| Arc::from(name.as_str())).collect();
    let store = Store::open(&config.data_dir, StoreOptions { dedupe_window: config.dedupe_window }, &connectors)?;
    let metrics = Arc::new(Metrics::default());
    let config = Arc::new(config);
    let catalog = {
        let config = config.clone();
        Arc::new(tokio::task::spawn_blocking(move || Catalog::open(config)).await??)
    };
    let watcher = crate::plugin::watch(catalog.clone(), shutdown.child_token())?;
    let rules = Rules::from_config(&config);
    let pipeline = Arc::new(Pipeline::new(config.charset_policy(), connectors, store.handle(), metrics.clone()).with_plugins(rules, catalog.clone()));
    let delivery = Delivery::start(&config, store.queues(), catalog.clone(), metrics.clone());

    let limits = ConnectionLimits {
        framing: config.framing(),
        max_frame_size: config.max_frame_size.0 as usize,
        frame_timeout: config.frame_timeout,
        idle_timeout: config.idle_timeout,
    };
    let listener = Listener::bind(config.listen_addr()?, limits, config.max_connections).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %config.data_dir.display(), connectors = ?config.connector_names(), "sluice listening");
    if config.connectors.is_empty() {
        tracing::warn!("no connectors configured: accepted messages are stored but queued for no destination (add [connectors.<name>])");
    }
    // The admin endpoint (health, metrics, the API the CLI uses): ready from
    // here until the drain starts; it stops, and DATA_DIR/admin.addr goes, when `run` returns.
    let ready = Arc::new(AtomicBool::new(false));
    let admin_state = AdminState { queues: store.queues(), metrics: metrics.clone(), catalog, ready: ready.clone() };
    let admin = crate::admin::start(&config, admin_state, &shutdown)?;
    ready.store(true, Ordering::SeqCst);
    on_ready(Bound { mllp: addr, admin: admin.as_ref().map(RunningAdmin::addr) });

    let tasks = TaskTracker::new();
    let force_close = CancellationToken::new();
    listener.run(pipeline.clone(), metrics.clone(), tasks.clone(), shutdown.clone(), force_close.clone()).await;

    tracing::info!(open = metrics.connections_open.get(), "shutting down: no new connections; draining");
    tasks.close();
    if tokio::time::timeout(config.shutdown_timeout, tasks.wait()).await.is_err() {
        tracing::warn!(timeout = ?config.shutdown_timeout, "connections still open after shutdown_timeout; closing them");
        force_close.cancel();
        tasks.wait().await;
    }
    delivery.stop().await;
    // The last commit handles are gone: the committer finishes its queue and stops.
    drop(pipeline);
    watcher.abort();
    tokio::task::spawn_blocking(move || store.close()).await??;
    tracing::info!(
        frames = metrics.frames.get(),
        duplicates = metrics.duplicates.get(),
        ignored_bytes = metrics.ignored_bytes.get(),
        "store flushed; stopped"
    );
    Ok(())
}

/// Cancels `token` on the first SIGINT or SIGTERM; a second one exits at once.
pub fn cancel_on_signals(token: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("signal received; stopping (a second signal exits at once)");
        token.cancel();
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
    Ok(())
}
