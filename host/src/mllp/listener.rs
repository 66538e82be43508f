//! The MLLP listener of an interface: accepts connections up to the
//! interface's `max_connections` (further ones are closed at once; its plain
//! and TLS listeners share the count) and
//! runs each on its own task, where a TLS listener first completes the
//! handshake within `connect_timeout`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::ConnectionLimits;
use crate::interface::{InterfaceHandle, Serving};
use crate::tls::ServerTls;

pub struct Listener {
    listener: TcpListener,
    /// Every connection is TLS, with the interface's certificate.
    tls: bool,
}

/// Connection slots of one interface (its listeners share them); `None`: unlimited.
pub type Slots = Option<Arc<Semaphore>>;

/// `max_connections` slots (0: unlimited).
pub fn slots(max_connections: usize) -> Slots {
    (max_connections > 0).then(|| Arc::new(Semaphore::new(max_connections)))
}

impl Listener {
    pub async fn bind(addr: SocketAddr, tls: bool) -> anyhow::Result<Listener> {
        let what = if tls { "MLLP/TLS" } else { "MLLP" };
        let listener = TcpListener::bind(addr).await.with_context(|| format!("failed to listen for {what} on {addr}"))?;
        Ok(Listener { listener, tls })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts until `stop` is cancelled. Each connection runs on a task of
    /// `serving.tasks` with the interface's settings as they are when it is
    /// accepted; it finishes its current message when the interface stops,
    /// or ends at once on `serving.force_close`.
    pub async fn run(self, interface: Arc<InterfaceHandle>, serving: Serving, stop: CancellationToken) {
        let metrics = &serving.metrics;
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = stop.cancelled() => return,
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
            let settings = interface.settings();
            let permit = match &settings.slots {
                None => None,
                Some(slots) => match slots.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        metrics.connections_refused.inc();
                        metrics.interface_refused(&interface.name);
                        tracing::warn!(%peer, interface = %interface.name, "connection refused: max_connections reached");
                        drop(stream);
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            metrics.connections_accepted.inc();
            metrics.connections_open.inc();
            tracing::debug!(%peer, interface = %interface.name, "connection accepted");
            let tls = if self.tls { Some(settings.tls.clone()) } else { None };
            let (interface, serving) = (interface.clone(), serving.clone());
            serving.tasks.clone().spawn(async move {
                tokio::select! {
                    _ = serve(stream, peer, tls, &interface, &serving, settings.limits) => {}
                    _ = serving.force_close.cancelled() => tracing::warn!(%peer, "connection force-closed at shutdown"),
                }
                serving.metrics.connections_open.dec();
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
    tls: Option<Option<Arc<ServerTls>>>,
    interface: &InterfaceHandle,
    serving: &Serving,
    limits: ConnectionLimits,
) {
    let metrics = &serving.metrics;
    let Some(tls) = tls else {
        return super::connection::serve(stream, peer, false, limits, interface, serving).await;
    };
    let Some(tls) = tls else {
        tracing::error!(%peer, interface = %interface.name, "TLS listener without a certificate; connection closed");
        return;
    };
    let handshake = tokio::select! {
        done = tokio::time::timeout(limits.connect_timeout, tls.acceptor().accept(stream)) => done,
        _ = interface.stop.cancelled() => return,
    };
    match handshake {
        Ok(Ok(stream)) => super::connection::serve(stream, peer, true, limits, interface, serving).await,
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
