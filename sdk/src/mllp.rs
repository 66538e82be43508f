//! Forwarding a message to another MLLP system, for connectors: the Rust
//! side of `wit/mllp.wit`.
//!
//! The host does the networking: one persistent connection per
//! destination, one message in flight on it, the ACK awaited and matched
//! against the message's MSH-10. Only destinations the configuration grants
//! the plugin can be reached (`[plugins.NAME] allow.mllp = ["host:port"]`).
//!
//! ```no_run
//! use std::time::Duration;
//! use sluice_sdk::mllp::{self, SendError};
//! use sluice_sdk::{Connector, Delivery, Message};
//!
//! pub struct Forward;
//!
//! impl Connector for Forward {
//!     fn deliver(msg: &Message, _attempt: u32) -> Delivery {
//!         match mllp::send("lis.example:2575", &msg.raw(), Duration::from_secs(30)) {
//!             Ok(ack) if ack.code == "AA" => Delivery::Delivered,
//!             Ok(ack) => Delivery::Retry(format!("{}: {}", ack.code, ack.text)),
//!             Err(SendError::Denied(why)) => Delivery::Reject(why),
//!             Err(err) => Delivery::Retry(err.to_string()),
//!         }
//!     }
//! }
//! ```
//!
//! Only call it from a connector: the import comes with the first call, and
//! validators and routers are not given it.
//! In unit tests, [`crate::testing::with_mllp`] plays the destination.

use std::fmt;
use std::time::Duration;

use crate::backend;

/// The receiver's acknowledgment of a forwarded message. Its MSA-2 matched
/// the message's MSH-10: the host checked (a mismatch is
/// [`SendError::BadAck`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// MSA-1 as sent: `AA`, `AE`, `AR`, `CA`, `CE` or `CR` (or whatever else
    /// a misbehaving receiver put there).
    pub code: String,
    /// MSA-3, or the first ERR segment's ERR-8 / ERR-3 text when MSA-3 is
    /// empty; empty when the receiver said nothing.
    pub text: String,
    /// The whole ACK as received, without its framing.
    pub raw: Vec<u8>,
}

/// Why a message got no usable ACK. The host closes the connection after
/// any of these, so the next send starts on a fresh one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The destination is not granted to this plugin, or the message has no
    /// MSH-10 to match the ACK against.
    Denied(String),
    /// Could not connect, the connection broke, or no ACK came within the
    /// timeout: the receiver may or may not have the message.
    Unavailable(String),
    /// Something came back that is not a valid ACK for this message (no
    /// MSA, or an MSA-2 other than the sent MSH-10). Never a success.
    BadAck(String),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Denied(why) => write!(f, "not allowed: {why}"),
            SendError::Unavailable(why) => write!(f, "unavailable: {why}"),
            SendError::BadAck(why) => write!(f, "not a valid ACK for the message: {why}"),
        }
    }
}

impl std::error::Error for SendError {}

/// Sends `message` (an HL7 message without framing, usually
/// [`Message::raw`](crate::Message::raw)) to `destination` (`host:port`)
/// and waits up to `timeout` for its ACK. A timeout beyond `u32::MAX`
/// milliseconds (49 days) is cut to that.
///
/// # Errors
///
/// [`SendError`] says why no usable ACK came back.
pub fn send(destination: &str, message: &[u8], timeout: Duration) -> Result<Ack, SendError> {
    let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    backend::mllp_send(destination, message, timeout_ms)
}
