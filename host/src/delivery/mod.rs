//! Delivery (DESIGN §1): after the ACK, one worker per connector takes the
//! oldest message of its outbox, hands it to the connector's plugin, and
//! removes it once delivered, retries it with back-off, or moves it to the
//! dead-letter queue. Workers never touch the ACK path: they only read the
//! store and remove what they finished.

mod backoff;
mod worker;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::hl7::CharsetPolicy;
use crate::metrics::Metrics;
use crate::outbox::Queues;
use crate::plugin::Catalog;

pub use backoff::Backoff;
use worker::Worker;

/// The running delivery workers.
pub struct Delivery {
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Delivery {
    /// Starts a worker for every connector that has a delivery plugin. A
    /// connector without one only queues (its messages wait in the outbox).
    pub fn start(config: &Config, queues: Queues, catalog: Arc<Catalog>, metrics: Arc<Metrics>) -> Delivery {
        let tasks = TaskTracker::new();
        let stop = CancellationToken::new();
        let charsets: CharsetPolicy = config.charset_policy();
        for (name, connector) in &config.connectors {
            let Some(plugin) = &connector.plugin else {
                tracing::info!(connector = %name, "no delivery plugin: messages stay in the outbox");
                continue;
            };
            let worker = Worker::new(name, plugin, connector, charsets, queues.clone(), catalog.clone(), metrics.clone());
            tasks.spawn(worker.run(stop.clone()));
        }
        tasks.close();
        Delivery { tasks, stop }
    }

    /// Stops every worker. An attempt in flight is abandoned: its message
    /// stays in the outbox and is delivered again after the restart.
    pub async fn stop(self) {
        self.stop.cancel();
        self.tasks.wait().await;
    }
}
