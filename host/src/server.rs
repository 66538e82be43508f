//! `sluice serve`: opens the store, loads the plugins and watches their
//! folder, starts the delivery workers, the listeners (plain and TLS) and
//! the admin endpoint. On SIGINT or SIGTERM it drains: `/readyz` turns 503,
//! it keeps accepting for `pre_shutdown_delay` (load balancers take it out
//! of rotation meanwhile), stops accepting, lets connections finish the
//! message they are on (up to `shutdown_timeout`), force-closes the rest,
//! stops the committer, flushes, exits. SIGHUP reloads the TLS files;
//! SIGUSR1 cycles the log level.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

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
use crate::tls::{OutboundTlsSet, ServerTls};

/// The addresses `sluice serve` is reachable at.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// The plain listener, or the TLS one when `listen` is `off`.
    pub mllp: SocketAddr,
    /// The TLS listener, when there is one.
    pub tls: Option<SocketAddr>,
    /// `None` when `admin.listen` is `off`.
    pub admin: Option<SocketAddr>,
}

/// Runs the engine until `shutdown` is cancelled. `on_ready` gets the bound
/// addresses once the listeners accept connections.
pub async fn run(config: Config, shutdown: CancellationToken, on_ready: impl FnOnce(Bound)) -> anyhow::Result<()> {
    // Certificates first: a TLS mistake is refused before the store opens.
    let server_tls = match config.tls.listen {
        Some(_) => Some(Arc::new(ServerTls::load(&config.tls).map_err(|err| anyhow::anyhow!("configuration key `tls`: {err}"))?)),
        None => None,
    };
    let metrics = Arc::new(Metrics::default());
    // Before anything slow (the store, plugin compiles): an early SIGHUP
    // must not take the default action, which ends the process.
    let outbound_tls = Arc::new(OnceLock::new());
    let reloads = reload_on_signals(server_tls.clone(), outbound_tls.clone(), metrics.clone(), shutdown.child_token())?;
    let connectors: Vec<Arc<str>> = config.connectors.keys().map(|name| Arc::from(name.as_str())).collect();
    let store = Store::open(&config.data_dir, StoreOptions { dedupe_window: config.dedupe_window }, &connectors)?;
    let config = Arc::new(config);
    let catalog = {
        let config = config.clone();
        Arc::new(tokio::task::spawn_blocking(move || Catalog::open(config)).await??)
    };
    let _ = outbound_tls.set(catalog.engine().outbound_tls.clone());
    let watcher = crate::plugin::watch(catalog.clone(), shutdown.child_token())?;
    let rules = Rules::from_config(&config);
    let pipeline = Arc::new(Pipeline::new(config.charset_policy(), connectors, store.handle(), metrics.clone()).with_plugins(rules, catalog.clone()));
    let delivery = Delivery::start(&config, store.queues(), catalog.clone(), metrics.clone());

    let limits = ConnectionLimits {
        framing: config.framing(),
        max_frame_size: config.max_frame_size.0 as usize,
        frame_timeout: config.frame_timeout,
        idle_timeout: config.idle_timeout,
        connect_timeout: config.connect_timeout,
    };
    let slots = crate::mllp::slots(config.max_connections);
    let plain = match config.listen_addr() {
        Some(addr) => Some(Listener::bind(addr?, limits, slots.clone(), None).await?),
        None => None,
    };
    let tls = match (config.tls_listen_addr(), &server_tls) {
        (Some(addr), Some(server_tls)) => Some(Listener::bind(addr, limits, slots, Some(server_tls.clone())).await?),
        _ => None,
    };
    let plain_addr = plain.as_ref().map(Listener::local_addr).transpose()?;
    let tls_addr = tls.as_ref().map(Listener::local_addr).transpose()?;
    let Some(main_addr) = plain_addr.or(tls_addr) else { anyhow::bail!("configuration key `listen`: no listener configured") };
    tracing::info!(
        addr = ?plain_addr,
        tls = ?tls_addr,
        mutual_tls = server_tls.as_ref().is_some_and(|t| t.mutual()),
        data_dir = %config.data_dir.display(),
        connectors = ?config.connector_names(),
        "sluice listening"
    );
    if config.connectors.is_empty() {
        tracing::warn!("no connectors configured: accepted messages are stored but queued for no destination (add [connectors.<name>])");
    }
    // The admin endpoint (health, metrics, the API the CLI uses): ready from
    // here until the drain starts; it stops, and DATA_DIR/admin.addr goes, when `run` returns.
    let ready = Arc::new(AtomicBool::new(false));
    let admin_state = AdminState { queues: store.queues(), metrics: metrics.clone(), catalog, ready: ready.clone() };
    let admin = crate::admin::start(&config, admin_state, &shutdown)?;
    ready.store(true, Ordering::SeqCst);
    on_ready(Bound { mllp: main_addr, tls: tls_addr, admin: admin.as_ref().map(RunningAdmin::addr) });

    // Listeners accept until `stop_accepting`: `pre_shutdown_delay` after the
    // shutdown signal, so that a load balancer that polls /readyz (503 from
    // the signal on) stops sending new connections first.
    let stop_accepting = CancellationToken::new();
    let tasks = TaskTracker::new();
    let force_close = CancellationToken::new();
    let mut listening = tokio::task::JoinSet::new();
    for listener in [plain, tls].into_iter().flatten() {
        listening.spawn(listener.run(pipeline.clone(), metrics.clone(), tasks.clone(), stop_accepting.clone(), force_close.clone()));
    }
    // The admin endpoint turns /readyz to 503 on this same signal.
    shutdown.cancelled().await;
    if !config.pre_shutdown_delay.is_zero() {
        tracing::info!(delay = ?config.pre_shutdown_delay, "shutting down: not ready; still accepting for pre_shutdown_delay");
        tokio::time::sleep(config.pre_shutdown_delay).await;
    }
    stop_accepting.cancel();
    listening.join_all().await;
    reloads.abort();

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
    tracing::info!(frames = metrics.frames.get(), duplicates = metrics.duplicates.get(), ignored_bytes = metrics.ignored_bytes.get(), "store flushed; stopped");
    Ok(())
}

/// SIGHUP reloads the listener's certificate, key and client CA, and the
/// outbound destinations' (once the plugin engine holds them); a bad new
/// file is refused and logged, the old ones keep serving. SIGUSR1 moves the
/// log level one step along its cycle.
fn reload_on_signals(
    server_tls: Option<Arc<ServerTls>>,
    outbound_tls: Arc<OnceLock<OutboundTlsSet>>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    let mut user1 = signal(SignalKind::user_defined1())?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = hangup.recv() => reload_tls(server_tls.as_deref(), outbound_tls.get(), &metrics),
                _ = user1.recv() => match crate::logging::cycle_level() {
                    Some(level) => tracing::warn!(%level, "SIGUSR1: log level changed"),
                    None => tracing::warn!("SIGUSR1: the log level cannot change in this process"),
                },
                _ = stop.cancelled() => return,
            }
        }
    }))
}

fn reload_tls(server_tls: Option<&ServerTls>, outbound_tls: Option<&OutboundTlsSet>, metrics: &Metrics) {
    if let Some(server_tls) = server_tls {
        match server_tls.reload() {
            Ok(()) => tracing::info!("SIGHUP: TLS certificate, key and client CA reloaded; new connections use them"),
            Err(err) => {
                metrics.tls_reload_failures.inc();
                tracing::error!(error = %err, "SIGHUP: TLS reload refused; the previous certificate keeps serving");
            }
        }
    }
    if let Some(outbound) = outbound_tls.filter(|set| !set.is_empty()) {
        match outbound.reload() {
            Ok(()) => tracing::info!("SIGHUP: outbound TLS files reloaded; new connections use them"),
            Err(err) => {
                metrics.tls_reload_failures.inc();
                tracing::error!(error = %format!("{err:#}"), "SIGHUP: outbound TLS reload refused; the previous files keep serving");
            }
        }
    }
    if server_tls.is_none() && outbound_tls.is_none_or(OutboundTlsSet::is_empty) {
        tracing::info!("SIGHUP: no TLS configured; nothing to reload");
    }
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
