//! The MLLP listener: accepts connections up to `max_connections` (further
//! ones are closed at once; plain and TLS listeners share the count) and
//! runs each on its own task, where a TLS listener first completes the
//! handshake within `connect_timeout`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ConnectionLimits;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::tls::ServerTls;

pub struct Listener {
    listener: TcpListener,
    limits: ConnectionLimits,
    slots: Slots,
    /// `Some`: every connection is TLS.
    tls: Option<Arc<ServerTls>>,
}

/// Connection slots shared by the listeners; `None`: unlimited.
pub type Slots = Option<Arc<Semaphore>>;

/// `max_connections` slots (0: unlimited).
pub fn slots(max_connections: usize) -> Slots {
    (max_connections > 0).then(|| Arc::new(Semaphore::new(max_connections)))
}

impl Listener {
    pub async fn bind(addr: SocketAddr, limits: ConnectionLimits, slots: Slots, tls: Option<Arc<ServerTls>>) -> anyhow::Result<Listener> {
        let what = if tls.is_some() { "MLLP/TLS" } else { "MLLP" };
        let listener = TcpListener::bind(addr).await.with_context(|| format!("failed to listen for {what} on {addr}"))?;
        Ok(Listener { listener, limits, slots, tls })
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
            let tls = self.tls.clone();
            tasks.spawn(async move {
                tokio::select! {
                    _ = serve(stream, peer, tls, limits, pipeline, metrics.clone(), shutdown) => {}
                    _ = force_close.cancelled() => tracing::warn!(%peer, "connection force-closed at shutdown"),
                }
                metrics.connections_open.dec();
                drop(permit);
            });
        }
    }
}

/// One connection, after its TLS handshake when the listener has TLS. A
/// handshake that fails or stalls past `connect_timeout` closes it, logged
/// with the peer's address.
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<ServerTls>>,
    limits: ConnectionLimits,
    pipeline: Arc<Pipeline>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let Some(tls) = tls else {
        return super::connection::serve(stream, peer, limits, pipeline, metrics, shutdown).await;
    };
    let handshake = tokio::select! {
        done = tokio::time::timeout(limits.connect_timeout, tls.acceptor().accept(stream)) => done,
        _ = shutdown.cancelled() => return,
    };
    match handshake {
        Ok(Ok(stream)) => super::connection::serve(stream, peer, limits, pipeline, metrics, shutdown).await,
        Ok(Err(err)) => {
            metrics.tls_handshake_failures.inc();
            let mutual = if tls.mutual() { " (mutual TLS: a valid client certificate is required)" } else { "" };
            tracing::warn!(%peer, error = %err, "TLS handshake failed{mutual}; connection closed");
        }
        Err(_) => {
            metrics.tls_handshake_failures.inc();
            tracing::warn!(%peer, timeout = ?limits.connect_timeout, "TLS handshake not completed within connect_timeout; connection closed");
        }
    }
}
