//! What a connection does after a frame is processed.

use bytes::Bytes;

use crate::ack::AckCode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The ACK to send; `None` when the sender asked for none (or gets none).
    pub ack: Option<Bytes>,
    /// Close the connection instead of answering (`on_reject`/`on_error = "close"`).
    pub close: bool,
    /// What the sender got, as counted per interface: the MSA-1 code,
    /// `none`, or `closed`.
    pub answer: &'static str,
    /// The sender's label (`MSH-3^MSH-4`).
    pub sender: String,
}

impl Reply {
    pub fn answer(ack: Option<Bytes>, code: Option<AckCode>, sender: String) -> Reply {
        let answer = match (&ack, code) {
            (Some(_), Some(code)) => code.as_str(),
            _ => "none",
        };
        Reply { ack, close: false, answer, sender }
    }

    pub fn close(sender: String) -> Reply {
        Reply { ack: None, close: true, answer: "closed", sender }
    }
}
