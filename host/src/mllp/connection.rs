//! One MLLP connection: read frames, process each in order, write its ACK.
//! Every wait is bounded: `idle_timeout` between frames, `frame_timeout`
//! from a frame's first byte to its last, and writes to a peer that does not
//! read. Nothing the peer sends makes this task panic or buffer without bound.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout, timeout_at};
use tokio_util::codec::{Decoder, Encoder};
use tokio_util::sync::CancellationToken;

use super::{Framing, MllpCodec, MllpEvent};
use crate::ack::{ErrorCode, Issue};
use crate::interface::{ConnectionGuard, InterfaceHandle, Serving};
use crate::metrics::Metrics;
use crate::pipeline::{Pipeline, Reply};

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub framing: Framing,
    pub max_frame_size: usize,
    pub frame_timeout: Duration,
    pub idle_timeout: Duration,
    /// Longest a TLS handshake may take.
    pub connect_timeout: Duration,
}

const READ_CHUNK: usize = 16 * 1024;

/// Why a connection ended, for the log.
#[derive(Debug)]
enum Closed {
    ByPeer,
    Idle,
    FrameTimeout,
    Oversized,
    /// The sender's policy says to close rather than send a NACK.
    InsteadOfNack,
    Shutdown,
    Io(std::io::Error),
}

pub(super) async fn serve<S>(mut stream: S, peer: SocketAddr, tls: bool, limits: ConnectionLimits, interface: &InterfaceHandle, serving: &Serving)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let metrics = &serving.metrics;
    let _open = metrics.interface_connected(&interface.name);
    let listed = interface.stats.connected(peer, tls);
    let mut codec = MllpCodec::new(limits.framing, limits.max_frame_size);
    let mut conn = Connection { peer, limits, interface, listed: &listed, pipeline: &serving.pipeline, metrics, out: BytesMut::new() };
    let closed = conn.run(&mut stream, &mut codec, interface.stop.clone()).await;
    let _ = timeout(limits.idle_timeout, stream.shutdown()).await;
    let ignored_bytes = codec.ignored_bytes();
    metrics.ignored_bytes.add(ignored_bytes);
    match &closed {
        Closed::Io(err) => tracing::info!(%peer, error = %err, ignored_bytes, "connection closed"),
        reason if ignored_bytes > 0 => tracing::info!(%peer, ?reason, ignored_bytes, "connection closed; bytes outside frames were ignored"),
        reason => tracing::debug!(%peer, ?reason, "connection closed"),
    }
}

struct Connection<'a> {
    peer: SocketAddr,
    limits: ConnectionLimits,
    interface: &'a InterfaceHandle,
    listed: &'a ConnectionGuard<'a>,
    pipeline: &'a Pipeline,
    metrics: &'a Metrics,
    out: BytesMut,
}

impl Connection<'_> {
    async fn run<S>(&mut self, stream: &mut S, codec: &mut MllpCodec, shutdown: CancellationToken) -> Closed
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let mut idle_since = Instant::now();
        // When the frame being received began. A start byte that abandons a
        // partial frame does not restart it: only a complete frame does.
        let mut frame_started: Option<Instant> = None;
        // When the last read returned: a frame decoded now ended in that read,
        // so its ACK latency counts from there (waiting behind earlier frames included).
        let mut last_read = Instant::now();
        loop {
            // Every complete frame already buffered is answered before reading more.
            loop {
                let event = match codec.decode(&mut buf) {
                    Ok(Some(event)) => event,
                    Ok(None) => break,
                    Err(err) => return Closed::Io(err),
                };
                match event {
                    MllpEvent::Frame(payload) => {
                        frame_started = None;
                        self.metrics.frames.inc();
                        let size = payload.len();
                        // The interface's rules as they are now: a reload applies from the next message.
                        let settings = self.interface.settings();
                        let reply = self.pipeline.process(payload, self.peer, &settings.rules).await;
                        self.count(&reply, size);
                        if reply.close {
                            tracing::info!(peer = %self.peer, interface = %self.interface.name, sender = %reply.sender, "message not accepted: connection closed instead of a NACK (sender policy)");
                            return Closed::InsteadOfNack;
                        }
                        if let Some(ack) = reply.ack {
                            if let Err(err) = self.send(stream, codec, &ack).await {
                                return Closed::Io(err);
                            }
                            self.metrics.ack_latency.observe(last_read.elapsed());
                        }
                        idle_since = Instant::now();
                    }
                    MllpEvent::Oversized { head, limit } => {
                        self.metrics.oversized_frames.inc();
                        tracing::warn!(peer = %self.peer, limit, "frame larger than max_frame_size refused; closing");
                        let issue = Issue::new(ErrorCode::APPLICATION_INTERNAL_ERROR, format!("message larger than max_frame_size ({limit} bytes)"));
                        self.refuse(stream, codec, &head, issue).await;
                        return Closed::Oversized;
                    }
                }
            }
            let deadline = if codec.in_frame() {
                *frame_started.get_or_insert_with(Instant::now) + self.limits.frame_timeout
            } else {
                idle_since + self.limits.idle_timeout
            };

            buf.reserve(READ_CHUNK);
            let read = tokio::select! {
                read = timeout_at(deadline, stream.read_buf(&mut buf)) => read,
                // Between frames a shutdown closes at once; a frame being
                // received is finished first (bounded by frame_timeout).
                _ = shutdown.cancelled(), if !codec.in_frame() => return Closed::Shutdown,
            };
            match read {
                Ok(Ok(0)) => return Closed::ByPeer,
                Ok(Ok(n)) => {
                    last_read = Instant::now();
                    self.metrics.bytes_in.add(n as u64);
                }
                Ok(Err(err)) => return Closed::Io(err),
                Err(_) if codec.in_frame() => {
                    self.metrics.frame_timeouts.inc();
                    tracing::warn!(peer = %self.peer, timeout = ?self.limits.frame_timeout, "frame not completed within frame_timeout; closing");
                    let partial = codec.partial_frame(&buf).unwrap_or_default().to_vec();
                    let issue = Issue::new(
                        ErrorCode::APPLICATION_INTERNAL_ERROR,
                        format!("message not completed within frame_timeout ({})", humantime::format_duration(self.limits.frame_timeout)),
                    );
                    self.refuse(stream, codec, &partial, issue).await;
                    return Closed::FrameTimeout;
                }
                Err(_) => {
                    self.metrics.idle_timeouts.inc();
                    return Closed::Idle;
                }
            }
        }
    }

    /// Answers a frame that will not be processed (its first bytes are kept
    /// in the rejected store); the connection closes after this either way.
    async fn refuse<S: AsyncWrite + Unpin>(&mut self, stream: &mut S, codec: &mut MllpCodec, head: &[u8], issue: Issue) {
        let settings = self.interface.settings();
        let reply = self.pipeline.refuse_partial(head, self.peer, &settings.rules, issue, true).await;
        self.count(&reply, head.len());
        if let Some(ack) = reply.ack {
            let _ = self.send(stream, codec, &ack).await;
        }
    }

    /// Counts a message for its interface and sender.
    fn count(&self, reply: &Reply, size: usize) {
        let sender = self.interface.stats.record(&reply.sender, reply.answer, size);
        self.listed.message();
        self.metrics.record_interface_message(&self.interface.name, &sender, reply.answer, size);
    }

    /// Writes one ACK; a peer that does not read it within `idle_timeout` is dropped.
    async fn send<S: AsyncWrite + Unpin>(&mut self, stream: &mut S, codec: &mut MllpCodec, ack: &[u8]) -> std::io::Result<()> {
        self.out.clear();
        codec.encode(ack, &mut self.out)?;
        match timeout(self.limits.idle_timeout, stream.write_all(&self.out)).await {
            Ok(Ok(())) => {
                self.metrics.bytes_out.add(self.out.len() as u64);
                Ok(())
            }
            Ok(Err(err)) => Err(err),
            Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "peer does not read its ACKs")),
        }
    }
}
