//! One connector's delivery worker: strictly one message at a time, oldest
//! first, so the destination sees messages in arrival order. A message that
//! fails holds the queue (retried with back-off) until it is delivered or
//! moved to the dead-letter queue.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Backoff;
use crate::config::{ConnectorConfig, RetryPolicy};
use crate::hl7::{CharsetPolicy, Message};
use crate::logging::Phi;
use crate::metrics::{AttemptResult, Metrics};
use crate::outbox::{Queued, Queues, StoreError, now_ms};
use crate::plugin::{Catalog, Delivery, MessageScope, World};

/// Outbox entries read at a time; the worker holds no more than these in memory.
const READ_AHEAD: usize = 64;

pub(super) struct Worker {
    connector: Arc<str>,
    plugin: String,
    /// The connector's `config` table as JSON, what the plugin's `settings()` returns.
    settings: Arc<str>,
    retry: RetryPolicy,
    dead_letter: bool,
    attempt_timeout: Duration,
    charsets: CharsetPolicy,
    queues: Queues,
    catalog: Arc<Catalog>,
    metrics: Arc<Metrics>,
}

/// What one attempt came to.
enum Outcome {
    Delivered,
    /// The plugin asked to try again later.
    Retry(String),
    /// The plugin refused the message for good.
    Reject(String),
    /// The plugin gave no answer: trap, deadline, memory, attempt timeout.
    Failed(String),
    /// Nothing to deliver with (the plugin is not loaded): the message is
    /// not at fault, so no attempt is counted.
    Unavailable(String),
}

impl Worker {
    pub(super) fn new(
        name: &str,
        plugin: &str,
        config: &ConnectorConfig,
        charsets: CharsetPolicy,
        queues: Queues,
        catalog: Arc<Catalog>,
        metrics: Arc<Metrics>,
    ) -> Worker {
        Worker {
            connector: Arc::from(name),
            plugin: plugin.to_string(),
            settings: Arc::from(serde_json::to_string(&config.config).unwrap_or_else(|_| "{}".into())),
            retry: config.retry.clone(),
            dead_letter: config.dead_letter,
            attempt_timeout: config.attempt_timeout,
            charsets,
            queues,
            catalog,
            metrics,
        }
    }

    pub(super) async fn run(self, stop: CancellationToken) {
        let waker = self.queues.waker(&self.connector);
        let mut backoff = Backoff::new(self.retry.clone());
        // The last sequence number finished: reading resumes after it.
        let mut cursor = 0;
        let mut pending: VecDeque<Queued> = VecDeque::new();
        tracing::info!(connector = %self.connector, plugin = %self.plugin, "delivery worker started");
        loop {
            if pending.is_empty() {
                // Registered before reading, so a commit in between is not missed.
                let wake = waker.notified();
                tokio::pin!(wake);
                wake.as_mut().enable();
                match self.store(move |queues, connector| queues.next_batch(connector, cursor, READ_AHEAD)).await {
                    Ok(batch) => pending.extend(batch),
                    Err(err) => {
                        tracing::error!(connector = %self.connector, error = %err, "cannot read the outbox");
                        if !pause(&stop, backoff.failed()).await {
                            return;
                        }
                        continue;
                    }
                }
                if pending.is_empty() {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = wake => continue,
                    }
                }
            }
            let Some(entry) = pending.front_mut() else { continue };
            let attempt = entry.attempts.saturating_add(1);
            let outcome = tokio::select! {
                _ = stop.cancelled() => return,
                outcome = self.attempt(entry, attempt) => outcome,
            };
            let finished = match outcome {
                Outcome::Delivered => {
                    self.metrics.record_attempt(&self.connector, AttemptResult::Delivered);
                    self.metrics.observe_delivery_latency(&self.connector, Duration::from_millis(now_ms().saturating_sub(entry.meta.received_at_ms)));
                    tracing::debug!(connector = %self.connector, control_id = %entry.meta.control_id, attempt, "delivered");
                    backoff.succeeded();
                    let done = entry.clone();
                    self.store(move |queues, connector| queues.delivered(connector, &done)).await
                }
                Outcome::Reject(reason) if self.dead_letter => {
                    self.metrics.record_attempt(&self.connector, AttemptResult::Rejected);
                    self.bury(entry, attempt, format!("rejected: {reason}")).await
                }
                Outcome::Retry(reason) | Outcome::Failed(reason) | Outcome::Reject(reason) => {
                    if self.dead_letter && attempt >= self.retry.max_attempts {
                        self.bury(entry, attempt, format!("gave up after {attempt} attempts: {reason}")).await
                    } else {
                        tracing::warn!(connector = %self.connector, control_id = %entry.meta.control_id, attempt, reason = %Phi(&reason), "delivery failed; will retry");
                        entry.attempts = attempt;
                        entry.last_error = Some(reason.clone());
                        let noted = entry.clone();
                        let _ = self.store(move |queues, connector| queues.record_failure(connector, &noted, attempt, &reason)).await;
                        if !pause(&stop, backoff.failed()).await {
                            return;
                        }
                        continue;
                    }
                }
                Outcome::Unavailable(reason) => {
                    tracing::warn!(connector = %self.connector, reason = %Phi(&reason), "cannot deliver; waiting");
                    if !pause(&stop, backoff.failed()).await {
                        return;
                    }
                    continue;
                }
            };
            match finished {
                Ok(()) => {
                    cursor = entry.seq;
                    pending.pop_front();
                }
                Err(err) => {
                    // The entry stays: it is tried again (delivered twice at
                    // worst), never skipped.
                    tracing::error!(connector = %self.connector, error = %err, "cannot update the outbox");
                    if !pause(&stop, backoff.failed()).await {
                        return;
                    }
                }
            }
        }
    }

    /// One delivery attempt through the plugin loaded now.
    async fn attempt(&self, entry: &Queued, attempt: u32) -> Outcome {
        let plugins = self.catalog.snapshot();
        let Some(plugin) = plugins.get(&self.plugin) else {
            return Outcome::Unavailable(format!("plugin `{}` is not loaded", self.plugin));
        };
        if plugin.world != World::Connector {
            return Outcome::Unavailable(format!("plugin `{}` is a {} plugin, not a connector", self.plugin, plugin.world));
        }
        let message = match Message::parse(entry.raw.clone(), self.charsets) {
            Ok(message) => Arc::new(message),
            Err(err) => return Outcome::Reject(format!("the stored message cannot be parsed: {err}")),
        };
        let mut scope = MessageScope::default();
        let started = Instant::now();
        let answer = tokio::time::timeout(self.attempt_timeout, plugin.deliver(&mut scope, message, self.settings.clone(), attempt)).await;
        self.metrics.observe_plugin_call(&self.plugin, "connector", started.elapsed());
        let outcome = match answer {
            Err(_) => Outcome::Failed(format!("no answer within attempt_timeout ({})", humantime::format_duration(self.attempt_timeout))),
            Ok(Err(failure)) => Outcome::Failed(failure.to_string()),
            Ok(Ok(Delivery::Delivered)) => Outcome::Delivered,
            Ok(Ok(Delivery::Retry(reason))) => Outcome::Retry(reason),
            Ok(Ok(Delivery::Reject(reason))) => Outcome::Reject(reason),
        };
        match &outcome {
            Outcome::Retry(_) => self.metrics.record_attempt(&self.connector, AttemptResult::Retry),
            Outcome::Failed(_) => self.metrics.record_attempt(&self.connector, AttemptResult::Failed),
            _ => {}
        }
        outcome
    }

    /// Moves the entry to the dead-letter queue.
    async fn bury(&self, entry: &Queued, attempts: u32, error: String) -> Result<(), StoreError> {
        tracing::warn!(connector = %self.connector, control_id = %entry.meta.control_id, attempts, error = %Phi(&error), "moved to the dead-letter queue");
        let entry = entry.clone();
        self.store(move |queues, connector| queues.move_to_dead_letter(connector, &entry, attempts, &error)).await
    }

    /// Runs a store call off the runtime's threads (RocksDB may block), which
    /// the ACK path shares.
    async fn store<R: Send + 'static>(&self, call: impl FnOnce(&Queues, &str) -> Result<R, StoreError> + Send + 'static) -> Result<R, StoreError> {
        let (queues, connector) = (self.queues.clone(), self.connector.clone());
        tokio::task::spawn_blocking(move || call(&queues, &connector)).await.unwrap_or(Err(StoreError::Closed))
    }
}

/// Waits `delay` unless stopped first; false when stopped.
async fn pause(stop: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}
