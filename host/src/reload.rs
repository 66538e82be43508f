//! Configuration reload without a restart (DESIGN §6): on SIGHUP and when a
//! config file changes, the layers are read again and, if the result is
//! valid, applied: interfaces and connectors added, removed or changed,
//! plugins' sandbox policies, the TLS files. A bad configuration is refused
//! with one log line naming the key, and the running one stays. Settings
//! that only a restart can change (the store, the admin endpoint, ...) are
//! named in a warning and keep their running value.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify::{Event, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Overrides};
use crate::delivery::Delivery;
use crate::interface::Interfaces;
use crate::metrics::Metrics;
use crate::plugin::Catalog;

/// Where the configuration came from, so it can be read again.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    pub files: Vec<PathBuf>,
    pub overrides: Overrides,
}

/// Why a reload runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Hangup,
    FileChanged,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Hangup => "SIGHUP",
            Trigger::FileChanged => "config file changed",
        }
    }
}

/// Quiet time after the last change to a config file before it is read
/// (an editor writes, renames, touches).
const DEBOUNCE: Duration = Duration::from_millis(200);

pub struct Reloader {
    source: ConfigSource,
    current: Mutex<Arc<Config>>,
    interfaces: Arc<Interfaces>,
    delivery: Arc<Delivery>,
    catalog: Arc<Catalog>,
    metrics: Arc<Metrics>,
}

impl Reloader {
    pub fn new(
        source: ConfigSource,
        config: Arc<Config>,
        interfaces: Arc<Interfaces>,
        delivery: Arc<Delivery>,
        catalog: Arc<Catalog>,
        metrics: Arc<Metrics>,
    ) -> Reloader {
        Reloader { source, current: Mutex::new(config), interfaces, delivery, catalog, metrics }
    }

    pub fn current(&self) -> Arc<Config> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn files(&self) -> Vec<PathBuf> {
        self.source.files.clone()
    }

    /// Reloads on every request until the channel closes.
    pub async fn run(self: Arc<Self>, mut requests: mpsc::UnboundedReceiver<Trigger>) {
        while let Some(mut trigger) = requests.recv().await {
            // Requests that queued meanwhile are served by this one reload.
            while let Ok(next) = requests.try_recv() {
                if next == Trigger::Hangup {
                    trigger = next;
                }
            }
            match self.reload().await {
                Ok(changes) => {
                    self.metrics.config_reloads.inc();
                    if changes.is_empty() {
                        tracing::info!(trigger = trigger.as_str(), "configuration reloaded: nothing changed");
                    }
                    for change in changes {
                        tracing::info!(trigger = trigger.as_str(), "configuration reloaded: {change}");
                    }
                }
                Err(err) => {
                    self.metrics.config_reload_failures.inc();
                    tracing::error!(trigger = trigger.as_str(), "configuration reload refused, the running configuration stays: {err:#}");
                }
            }
        }
    }

    /// Reads the configuration again and applies it; on error nothing changed.
    pub async fn reload(&self) -> anyhow::Result<Vec<String>> {
        let source = self.source.clone();
        let new = tokio::task::spawn_blocking(move || Config::load(&source.files, &source.overrides)).await??;
        let old = self.current();
        // Restart-only settings keep their running values in what is applied.
        let (new, kept) = keep_restart_only(&old, new);
        let new = Arc::new(new);
        let mut changes: Vec<String> = kept
            .into_iter()
            .map(|key| {
                tracing::warn!("configuration key `{key}` changed: it takes effect at the next restart; the running value stays");
                format!("`{key}` kept until restart")
            })
            .collect();
        // The [tls] files are read again: SIGHUP's promise for renewed certificates.
        let server_tls = crate::server::load_server_tls(&new).map_err(|err| {
            self.metrics.tls_reload_failures.inc();
            anyhow::anyhow!("TLS reload refused; the previous certificate keeps serving: {err:#}")
        })?;
        if server_tls.is_some() {
            changes.push("TLS certificate, key and client CA reloaded; new connections use them".into());
        }
        let specs = new.interface_specs().map_err(|(key, reason)| anyhow::anyhow!("configuration key `{key}`: {reason}"))?;
        changes.extend(self.reconfigure_plugins(new.clone()).await?);
        match self.interfaces.apply(&specs, &new, server_tls.clone()).await {
            Ok(applied) => changes.extend(applied),
            Err(err) => {
                // The plugins' configuration goes back with the rest.
                let _ = self.reconfigure_plugins(old).await;
                return Err(err);
            }
        }
        changes.extend(self.delivery.apply(&new).await);
        let outbound = &self.catalog.engine().outbound_tls;
        if !outbound.is_empty()
            && let Err(err) = outbound.reload()
        {
            self.metrics.tls_reload_failures.inc();
            tracing::error!(error = %format!("{err:#}"), "outbound TLS files not reloaded; the previous ones keep serving");
        }
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = new;
        Ok(changes)
    }

    async fn reconfigure_plugins(&self, config: Arc<Config>) -> anyhow::Result<Vec<String>> {
        let catalog = self.catalog.clone();
        tokio::task::spawn_blocking(move || catalog.reconfigure(config)).await?
    }
}

/// `new` with every setting only a restart can apply set back to its
/// running value in `old`, and the keys that differed.
fn keep_restart_only(old: &Config, mut new: Config) -> (Config, Vec<&'static str>) {
    let mut kept = Vec::new();
    macro_rules! keep {
        ($($key:ident),*) => {$(
            if new.$key != old.$key {
                kept.push(stringify!($key));
                new.$key = old.$key.clone();
            }
        )*};
    }
    keep!(data_dir, plugins_dir, plugin_cache_dir, dedupe_window, rejected_retention, min_free_disk, journal, charset, log, log_phi, admin, outbound_tls);
    (new, kept)
}

/// SIGHUP asks for a reload; SIGUSR1 moves the log level one step along its cycle.
pub fn on_signals(reload: mpsc::UnboundedSender<Trigger>, stop: CancellationToken) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    let mut user1 = signal(SignalKind::user_defined1())?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = hangup.recv() => {
                    let _ = reload.send(Trigger::Hangup);
                }
                _ = user1.recv() => match crate::logging::cycle_level() {
                    Some(level) => tracing::warn!(%level, "SIGUSR1: log level changed"),
                    None => tracing::warn!("SIGUSR1: the log level cannot change in this process"),
                },
                _ = stop.cancelled() => return,
            }
        }
    }))
}

/// Asks for a reload when one of `files` is written, replaced or removed.
/// Their folders are watched (not the files), so an editor's
/// write-and-rename is seen too.
pub fn watch_files(files: Vec<PathBuf>, reload: mpsc::UnboundedSender<Trigger>, stop: CancellationToken) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let files: Vec<PathBuf> = files.iter().map(|f| std::path::absolute(f).unwrap_or_else(|_| f.clone())).collect();
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let watched = files.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| match event {
        Ok(event) if !event.kind.is_access() && event.paths.iter().any(|p| watched.contains(p)) => {
            let _ = tx.send(());
        }
        Ok(_) => {}
        Err(err) => tracing::warn!("config file watch error: {err}"),
    })?;
    let mut dirs: Vec<PathBuf> = files.iter().filter_map(|f| f.parent().map(PathBuf::from)).collect();
    dirs.sort();
    dirs.dedup();
    for dir in &dirs {
        if let Err(err) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), "config folder not watched ({err}); SIGHUP still reloads");
        }
    }
    Ok(tokio::spawn(async move {
        let _watcher = watcher;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                event = rx.recv() => if event.is_none() { return },
            }
            while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
            let _ = reload.send(Trigger::FileChanged);
        }
    }))
}
