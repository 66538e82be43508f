//! Forwarding to MLLP destinations for connector plugins (`wit/mllp.wit`).
//! One pool for every plugin instance: one persistent connection per
//! destination, one message in flight on it, the ACK read back and checked
//! against the message's MSH-10.
//!
//! A connection is taken out of the pool for the time of a send and put back
//! only after a clean exchange. An error, a timeout, a bad ACK or a dropped
//! `send` future therefore closes it, and the next send starts on a fresh one:
//! a late or half-read ACK can never be taken for the next message's.

mod ack;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_util::codec::Decoder;

use super::bindings::mllp::{Ack, SendError};
use crate::mllp::{CARRIAGE_RETURN, END_BLOCK, Framing, MllpCodec, MllpEvent, START_BLOCK};
use crate::tls::{ClientStream as Stream, ClientTls, OutboundTlsSet};

/// Longest wait for a connection, or the send's timeout if shorter.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest ACK frame read; a larger one is a bad ACK.
const MAX_ACK: usize = 1 << 20;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 8 * 1024;

/// A `host:port` an MLLP message may be forwarded to. The host is kept
/// lowercase (and without the brackets of an IPv6 literal), so that grants
/// and pool entries compare without case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    host: String,
    port: u16,
}

impl Destination {
    /// `host:port` or `[v6]:port`; the port is required.
    pub fn parse(text: &str) -> Option<Destination> {
        let text = text.trim();
        let (host, port) = match text.strip_prefix('[') {
            Some(rest) => {
                let (host, after) = rest.split_once(']')?;
                (host, after.strip_prefix(':')?)
            }
            None => {
                let (host, port) = text.rsplit_once(':')?;
                if host.contains(':') {
                    return None;
                }
                (host, port)
            }
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return None;
        }
        Some(Destination::new(host, port.parse().ok()?))
    }

    pub fn new(host: &str, port: u16) -> Destination {
        Destination { host: host.to_ascii_lowercase(), port }
    }

    /// The host, lowercase, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') { write!(f, "[{}]:{}", self.host, self.port) } else { write!(f, "{}:{}", self.host, self.port) }
    }
}

/// Where a plugin may forward to, and the pool it forwards through.
#[derive(Clone)]
pub struct MllpAccess {
    pub pool: Arc<MllpPool>,
    pub allowed: Arc<[Destination]>,
}

/// The connections to every destination, shared by all plugin instances.
#[derive(Default)]
pub struct MllpPool {
    /// Only granted destinations get an entry, so the map stays as small as
    /// the configuration's `allow.mllp` lists.
    slots: Mutex<HashMap<Destination, Slot>>,
    /// Destinations reached over TLS (`[outbound_tls."host:port"]`).
    tls: OutboundTlsSet,
}

/// A destination's one connection; the lock is held for a whole exchange.
type Slot = Arc<tokio::sync::Mutex<Option<Connection>>>;

impl MllpPool {
    pub fn new() -> MllpPool {
        MllpPool::default()
    }

    /// A pool that wraps connections to the destinations in `tls` in TLS.
    pub fn with_tls(tls: OutboundTlsSet) -> MllpPool {
        MllpPool { tls, ..MllpPool::default() }
    }

    /// Sends `message` to `destination` for `plugin` and waits for its ACK.
    /// Everything (waiting for another send to the same destination,
    /// connecting, writing, the ACK) happens within `timeout`.
    pub async fn send(&self, plugin: &str, allowed: &[Destination], destination: &str, message: &[u8], timeout: Duration) -> Result<Ack, SendError> {
        let Some(dest) = Destination::parse(destination).filter(|d| allowed.contains(d)) else {
            tracing::warn!(plugin, destination, "MLLP forwarding denied: the destination is not in the plugin's `allow.mllp`");
            return Err(SendError::Denied(format!("plugin `{plugin}` may not forward to `{destination}` (not in its allow.mllp)")));
        };
        let control_id = ack::control_id(message).map_err(|why| SendError::Denied(format!("the message cannot be forwarded to {dest}: {why}")))?;
        if timeout.is_zero() {
            return Err(SendError::Unavailable(format!("not sent to {dest}: a timeout of 0 ms leaves no time for an ACK")));
        }
        let waited = to_ms(timeout);
        let deadline = Instant::now() + timeout;
        let slot = self.slot(&dest);
        let Ok(mut pooled) = timeout_at(deadline, slot.lock()).await else {
            return Err(SendError::Unavailable(format!("no ACK from {dest} within {waited}: another message to it was in flight the whole time")));
        };
        // Out of the pool until the exchange is clean (see the module doc).
        let conn = pooled.take();
        let tls = self.tls.get(&dest);
        match timeout_at(deadline, exchange(conn, &dest, tls.as_deref(), message, control_id, deadline)).await {
            Ok(Ok((conn, ack))) => {
                *pooled = conn;
                Ok(ack)
            }
            Ok(Err(err)) => Err(err),
            Err(_) => Err(SendError::Unavailable(format!("no ACK from {dest} within {waited}"))),
        }
    }

    fn slot(&self, dest: &Destination) -> Slot {
        // A poisoned map still holds valid slots: no invariant spans the lock.
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.entry(dest.clone()).or_default().clone()
    }
}

/// One message and its ACK. Returns the connection when it can carry the
/// next message.
async fn exchange(
    pooled: Option<Connection>,
    dest: &Destination,
    tls: Option<&ClientTls>,
    message: &[u8],
    control_id: &[u8],
    deadline: Instant,
) -> Result<(Option<Connection>, Ack), SendError> {
    let frame = [&[START_BLOCK][..], message, &[END_BLOCK, CARRIAGE_RETURN]].concat();
    let (mut conn, reused) = match pooled.and_then(|conn| conn.if_alive(dest)) {
        Some(conn) => (conn, true),
        None => (Connection::open(dest, tls, deadline).await?, false),
    };
    if let Err(err) = conn.write(&frame).await {
        match err {
            // The peer went away after the liveness check, and not one byte
            // reached it: the same message may go on a new connection.
            Write::NothingSent(err) if reused => {
                tracing::debug!(destination = %dest, "pooled MLLP connection failed before sending ({err}); reconnecting");
                conn = Connection::open(dest, tls, deadline).await?;
                conn.write(&frame).await.map_err(|err| unavailable(dest, "sending", err.into_io()))?;
            }
            err => return Err(unavailable(dest, "sending", err.into_io())),
        }
    }
    let reply = conn.read_frame(dest).await?;
    let ack = ack::check(&reply, control_id).map_err(|why| SendError::BadAck(format!("{dest}: {why}")))?;
    // Bytes after the ACK mean the peer is out of step with us.
    Ok((conn.buf.is_empty().then_some(conn), ack))
}

/// A duration as people read it, to the millisecond.
fn to_ms(duration: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_millis(duration.as_millis().try_into().unwrap_or(u64::MAX)))
}

fn unavailable(dest: &Destination, doing: &str, err: std::io::Error) -> SendError {
    SendError::Unavailable(format!("connection to {dest} failed while {doing}: {err}"))
}

enum Write {
    /// The first write failed: no byte of the message left this host.
    NothingSent(std::io::Error),
    /// Some bytes may have reached the receiver.
    Partial(std::io::Error),
}

impl Write {
    fn into_io(self) -> std::io::Error {
        match self {
            Write::NothingSent(err) | Write::Partial(err) => err,
        }
    }
}

struct Connection {
    stream: Stream,
    codec: MllpCodec,
    /// Received bytes not yet decoded.
    buf: BytesMut,
}

impl Connection {
    async fn open(dest: &Destination, tls: Option<&ClientTls>, deadline: Instant) -> Result<Connection, SendError> {
        let wait = CONNECT_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
        let connect_by = Instant::now() + wait;
        let tcp = match timeout_at(connect_by, TcpStream::connect((dest.host.as_str(), dest.port))).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => return Err(SendError::Unavailable(format!("cannot connect to {dest}: {err}"))),
            Err(_) => return Err(SendError::Unavailable(format!("cannot connect to {dest}: no answer within {}", to_ms(wait)))),
        };
        // Nagle would hold the frame's last bytes back.
        let _ = tcp.set_nodelay(true);
        let stream = match tls {
            None => Stream::Plain(tcp),
            Some(tls) => match timeout_at(connect_by, tls.connect(tcp)).await {
                Ok(Ok(stream)) => Stream::Tls(Box::new(stream)),
                Ok(Err(err)) => return Err(SendError::Unavailable(format!("TLS handshake with {dest} failed: {err}"))),
                Err(_) => return Err(SendError::Unavailable(format!("TLS handshake with {dest} not done within {}", to_ms(wait)))),
            },
        };
        tracing::debug!(destination = %dest, tls = tls.is_some(), "MLLP connection opened");
        Ok(Connection { stream, codec: MllpCodec::new(Framing::default(), MAX_ACK), buf: BytesMut::new() })
    }

    /// The connection if the peer has not closed it (or sent something
    /// unasked) while it sat in the pool. Asks the socket itself: the
    /// runtime's cached readiness may not have seen a FIN that just came.
    /// (Over TLS a close_notify or anything else unasked shows as bytes.)
    fn if_alive(self, dest: &Destination) -> Option<Connection> {
        let mut byte = 0u8;
        let fd = std::os::fd::AsRawFd::as_raw_fd(self.stream.tcp());
        // SAFETY: `fd` is the open socket `self` owns; the buffer is one valid byte.
        let peeked = unsafe { libc::recv(fd, (&raw mut byte).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
        let why = match peeked {
            0 => "was closed by the peer",
            n if n > 0 => "received bytes while idle",
            _ => match std::io::Error::last_os_error() {
                err if err.kind() == std::io::ErrorKind::WouldBlock => return Some(self),
                err => {
                    tracing::debug!(destination = %dest, "pooled MLLP connection is broken ({err}); reconnecting");
                    return None;
                }
            },
        };
        tracing::debug!(destination = %dest, "pooled MLLP connection {why}; reconnecting");
        None
    }

    async fn write(&mut self, frame: &[u8]) -> Result<(), Write> {
        let first = self.stream.write(frame).await.map_err(Write::NothingSent)?;
        self.stream.write_all(&frame[first..]).await.map_err(Write::Partial)?;
        self.stream.flush().await.map_err(Write::Partial)
    }

    /// The next frame from the peer, at most [`MAX_ACK`] bytes.
    async fn read_frame(&mut self, dest: &Destination) -> Result<Bytes, SendError> {
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(MllpEvent::Frame(frame))) => return Ok(frame),
                Ok(Some(MllpEvent::Oversized { limit, .. })) => {
                    return Err(SendError::BadAck(format!("{dest} answered with a frame larger than {limit} bytes")));
                }
                Ok(None) => {}
                Err(err) => return Err(unavailable(dest, "reading the ACK", err)),
            }
            self.buf.reserve(READ_CHUNK);
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => return Err(SendError::Unavailable(format!("{dest} closed the connection without an ACK"))),
                Ok(_) => {}
                Err(err) => return Err(unavailable(dest, "reading the ACK", err)),
            }
        }
    }
}
