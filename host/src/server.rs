//! `sluice serve`: opens the store, loads the plugins and watches their
//! folder, starts the delivery workers, the interfaces' listeners and
//! the admin endpoint. On SIGINT or SIGTERM it drains: `/readyz` turns 503,
//! it keeps accepting for `pre_shutdown_delay` (load balancers take it out
//! of rotation meanwhile), stops accepting, lets connections finish the
//! message they are on (up to `shutdown_timeout`), force-closes the rest,
//! stops the committer, flushes, exits. SIGHUP, or a change to a config
//! file, reloads the configuration and the TLS files (`reload`); SIGUSR1
//! cycles the log level.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{AdminState, RunningAdmin};
use crate::config::{Config, DEFAULT_INTERFACE};
use crate::delivery::Delivery;
use crate::interface::{Interfaces, Serving};
use crate::metrics::Metrics;
use crate::outbox::{Store, StoreOptions};
use crate::pipeline::Pipeline;
use crate::plugin::Catalog;
use crate::reload::{ConfigSource, Reloader};
use crate::tls::ServerTls;

/// The addresses `sluice serve` is reachable at.
#[derive(Debug, Clone)]
pub struct Bound {
    /// The default interface's plain listener, else its TLS one, else the first interface's.
    pub mllp: SocketAddr,
    /// The default interface's TLS listener, when there is one.
    pub tls: Option<SocketAddr>,
    /// `None` when `admin.listen` is `off`.
    pub admin: Option<SocketAddr>,
    /// Every listener: interface, whether it is TLS, address.
    pub interfaces: Vec<(String, bool, SocketAddr)>,
}

/// Runs the engine until `shutdown` is cancelled. `on_ready` gets the bound
/// addresses once the listeners accept connections. `source` is read again
/// on SIGHUP and whenever one of its files changes.
pub async fn run(config: Config, source: ConfigSource, shutdown: CancellationToken, on_ready: impl FnOnce(Bound)) -> anyhow::Result<()> {
    // Certificates first: a TLS mistake is refused before the store opens.
    let server_tls = load_server_tls(&config)?;
    let metrics = Arc::new(Metrics::default());
    // Before anything slow (the store, plugin compiles): an early SIGHUP
    // must not take the default action, which ends the process.
    let (reload_tx, reload_rx) = mpsc::unbounded_channel();
    let signals = crate::reload::on_signals(reload_tx.clone(), shutdown.child_token())?;
    let connectors: Vec<Arc<str>> = config.connectors.keys().map(|name| Arc::from(name.as_str())).collect();
    let options = StoreOptions {
        dedupe_window: config.dedupe_window,
        rejected_retention: config.rejected_retention,
        journal: config.journal.clone(),
        min_free_disk: config.min_free_disk.0,
    };
    let store = Store::open(&config.data_dir, options, &connectors)?;
    let config = Arc::new(config);
    let catalog = {
        let config = config.clone();
        Arc::new(tokio::task::spawn_blocking(move || Catalog::open(config)).await??)
    };
    let watcher = crate::plugin::watch(catalog.clone(), shutdown.child_token())?;
    let compaction = store.journal().compact_periodically(shutdown.child_token());
    let trimming = crate::memory::trim_after_storms(metrics.clone(), shutdown.child_token());
    let pipeline =
        Arc::new(Pipeline::new(config.charset_policy(), store.handle(), metrics.clone()).with_plugins(catalog.clone()).with_rejected(store.rejected()));
    let delivery = Arc::new(Delivery::start(&config, store.queues(), catalog.clone(), metrics.clone()).await);

    let tasks = TaskTracker::new();
    let force_close = CancellationToken::new();
    let interfaces =
        Arc::new(Interfaces::new(Serving { pipeline: pipeline.clone(), metrics: metrics.clone(), tasks: tasks.clone(), force_close: force_close.clone() }));
    let specs = config.interface_specs().map_err(|(key, reason)| anyhow::anyhow!("configuration key `{key}`: {reason}"))?;
    interfaces.apply(&specs, &config, server_tls.clone()).await?;
    let listeners = interfaces.bound().await;
    let default = |tls: bool| listeners.iter().find(|(name, t, _)| name == DEFAULT_INTERFACE && *t == tls).map(|(_, _, addr)| *addr);
    let tls_addr = default(true);
    let Some(main_addr) = default(false).or(tls_addr).or(listeners.first().map(|(_, _, addr)| *addr)) else {
        anyhow::bail!("configuration key `listen`: no listener configured")
    };
    tracing::info!(
        addr = %main_addr,
        tls = ?tls_addr,
        interfaces = ?specs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        mutual_tls = server_tls.as_ref().is_some_and(|t| t.mutual()),
        data_dir = %config.data_dir.display(),
        connectors = ?config.connector_names(),
        "sluice listening"
    );
    if config.connectors.is_empty() {
        tracing::warn!("no connectors configured: accepted messages are stored but queued for no destination (add [connectors.<name>])");
    }
    let reloader = Arc::new(Reloader::new(source, config.clone(), interfaces.clone(), delivery.clone(), catalog.clone(), metrics.clone()));
    let config_watch = crate::reload::watch_files(reloader.files(), reload_tx, shutdown.child_token())?;
    let reloads = tokio::spawn(reloader.clone().run(reload_rx));
    // The admin endpoint (health, metrics, the API the CLI uses): ready from
    // here until the drain starts; it stops, and DATA_DIR/admin.addr goes, when `run` returns.
    let ready = Arc::new(AtomicBool::new(false));
    let admin_state = AdminState {
        queues: store.queues(),
        metrics: metrics.clone(),
        catalog,
        ready: ready.clone(),
        interfaces: Some(interfaces.clone()),
        rejected: Some(store.rejected()),
        journal: Some(store.journal()),
        rates: Arc::default(),
        disk: Some(store.disk()),
    };
    let admin = crate::admin::start(&config, admin_state, &shutdown)?;
    ready.store(true, Ordering::SeqCst);
    on_ready(Bound { mllp: main_addr, tls: tls_addr, admin: admin.as_ref().map(RunningAdmin::addr), interfaces: listeners });

    // The admin endpoint turns /readyz to 503 on this same signal. Listeners
    // accept for `pre_shutdown_delay` more, so that a load balancer that
    // polls /readyz stops sending new connections first.
    shutdown.cancelled().await;
    let config = reloader.current();
    if !config.pre_shutdown_delay.is_zero() {
        tracing::info!(delay = ?config.pre_shutdown_delay, "shutting down: not ready; still accepting for pre_shutdown_delay");
        tokio::time::sleep(config.pre_shutdown_delay).await;
    }
    reloads.abort();
    config_watch.abort();
    signals.abort();
    interfaces.stop_accepting().await;
    interfaces.stop_connections().await;

    tracing::info!(open = metrics.connections_open.get(), "shutting down: no new connections; draining");
    tasks.close();
    if tokio::time::timeout(config.shutdown_timeout, tasks.wait()).await.is_err() {
        tracing::warn!(timeout = ?config.shutdown_timeout, "connections still open after shutdown_timeout; closing them");
        force_close.cancel();
        tasks.wait().await;
    }
    drop(reloader);
    delivery.stop().await;
    // The last commit handles are gone: the committer finishes its queue and stops.
    drop(pipeline);
    watcher.abort();
    compaction.abort();
    trimming.abort();
    tokio::task::spawn_blocking(move || store.close()).await??;
    tracing::info!(frames = metrics.frames.get(), duplicates = metrics.duplicates.get(), ignored_bytes = metrics.ignored_bytes.get(), "store flushed; stopped");
    Ok(())
}

/// The `[tls]` certificate, when a listener uses it.
pub(crate) fn load_server_tls(config: &Config) -> anyhow::Result<Option<Arc<ServerTls>>> {
    let used = config.tls.listen.is_some() || config.interfaces.values().any(|i| i.tls.is_some());
    if !used {
        return Ok(None);
    }
    let tls = ServerTls::load(&config.tls).map_err(|err| anyhow::anyhow!("configuration key `tls`: {err}"))?;
    Ok(Some(Arc::new(tls)))
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
