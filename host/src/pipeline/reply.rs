//! What a connection does after a frame is processed.

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The ACK to send; `None` when the sender asked for none.
    pub ack: Option<Bytes>,
}

impl Reply {
    pub fn ack(ack: Option<Bytes>) -> Reply {
        Reply { ack }
    }
}
