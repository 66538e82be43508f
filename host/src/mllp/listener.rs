//! The MLLP listener: accepts connections up to `max_connections` (further
//! ones are closed at once) and runs each on its own task.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ConnectionLimits;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;

pub struct Listener {
    listener: TcpListener,
    limits: ConnectionLimits,
    /// `None`: unlimited.
    slots: Option<Arc<Semaphore>>,
}

impl Listener {
    pub async fn bind(addr: SocketAddr, limits: ConnectionLimits, max_connections: usize) -> anyhow::Result<Listener> {
        let listener = TcpListener::bind(addr).await.with_context(|| format!("failed to listen on {addr}"))?;
        let slots = (max_connections > 0).then(|| Arc::new(Semaphore::new(max_connections)));
        Ok(Listener { listener, limits, slots })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts until `shutdown` is cancelled; connection tasks join `tasks`
    /// and finish their current message, or end at once on `force_close`.
    pub async fn run(self, pipeline: Arc<Pipeline>, metrics: Arc<Metrics>, tasks: TaskTracker, shutdown: CancellationToken, force_close: CancellationToken) {
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = shutdown.cancelled() => return,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: back off briefly, keep serving.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let permit = match &self.slots {
                None => None,
                Some(slots) => match slots.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        metrics.connections_refused.inc();
                        tracing::warn!(%peer, "connection refused: max_connections reached");
                        drop(stream);
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            metrics.connections_accepted.inc();
            metrics.connections_open.inc();
            tracing::debug!(%peer, "connection accepted");
            let (pipeline, metrics, shutdown, force_close, limits) = (pipeline.clone(), metrics.clone(), shutdown.clone(), force_close.clone(), self.limits);
            tasks.spawn(async move {
                tokio::select! {
                    _ = super::connection::serve(stream, peer, limits, pipeline, metrics.clone(), shutdown) => {}
                    _ = force_close.cancelled() => tracing::warn!(%peer, "connection force-closed at shutdown"),
                }
                metrics.connections_open.dec();
                drop(permit);
            });
        }
    }
}
