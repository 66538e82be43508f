//! Delivery (DESIGN §1): after the ACK, one worker per connector takes the
//! oldest message of its outbox, hands it to the connector's plugin, and
//! removes it once delivered, retries it with back-off, or moves it to the
//! dead-letter queue. Workers never touch the ACK path: they only read the
//! store and remove what they finished.

mod backoff;
mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConnectorConfig};
use crate::hl7::CharsetPolicy;
use crate::metrics::Metrics;
use crate::outbox::Queues;
use crate::plugin::Catalog;

pub use backoff::Backoff;
use worker::Worker;

/// The running delivery workers, one per connector with a delivery plugin.
pub struct Delivery {
    queues: Queues,
    catalog: Arc<Catalog>,
    metrics: Arc<Metrics>,
    workers: tokio::sync::Mutex<BTreeMap<String, Running>>,
}

struct Running {
    config: ConnectorConfig,
    charsets: CharsetPolicy,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Delivery {
    /// Starts a worker for every connector that has a delivery plugin. A
    /// connector without one only queues (its messages wait in the outbox).
    pub async fn start(config: &Config, queues: Queues, catalog: Arc<Catalog>, metrics: Arc<Metrics>) -> Delivery {
        let delivery = Delivery { queues, catalog, metrics, workers: tokio::sync::Mutex::default() };
        delivery.apply(config).await;
        delivery
    }

    /// Brings the workers to `config`: a removed connector's worker stops (its
    /// messages stay in the outbox), a changed one restarts with its new
    /// settings, a new one starts. Returns one line per change, for the log.
    pub async fn apply(&self, config: &Config) -> Vec<String> {
        let mut workers = self.workers.lock().await;
        let charsets = config.charset_policy();
        let mut changes = Vec::new();
        let stale: Vec<String> = workers
            .iter()
            .filter(|(name, running)| config.connectors.get(*name).is_none_or(|c| *c != running.config || charsets != running.charsets))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            let Some(running) = workers.remove(&name) else { continue };
            // An attempt in flight is abandoned: its message stays first in the outbox.
            running.stop.cancel();
            let _ = running.task.await;
            if !config.connectors.contains_key(&name) {
                changes.push(format!("connector `{name}` removed: its worker stopped; its outbox keeps what it holds"));
            }
        }
        for (name, connector) in &config.connectors {
            self.queues.register(name);
            if workers.contains_key(name) {
                continue;
            }
            let Some(plugin) = &connector.plugin else {
                tracing::info!(connector = %name, "no delivery plugin: messages stay in the outbox");
                continue;
            };
            let worker = Worker::new(name, plugin, connector, charsets, self.queues.clone(), self.catalog.clone(), self.metrics.clone());
            let stop = CancellationToken::new();
            let task = tokio::spawn(worker.run(stop.clone()));
            workers.insert(name.clone(), Running { config: connector.clone(), charsets, stop, task });
            changes.push(format!("connector `{name}` delivering with `{plugin}`"));
        }
        changes
    }

    /// Stops every worker. An attempt in flight is abandoned: its message
    /// stays in the outbox and is delivered again after the restart.
    pub async fn stop(&self) {
        let workers = std::mem::take(&mut *self.workers.lock().await);
        for running in workers.values() {
            running.stop.cancel();
        }
        for (_, running) in workers {
            let _ = running.task.await;
        }
    }
}
