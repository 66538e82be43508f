//! What the journal keeps: one record per message received (accepted or
//! not), its body (the message and the ACK sent) while `journal.retention`
//! lasts, and its events per connector.

use serde::{Deserialize, Serialize};

/// One message as it arrived and what the sender got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRecord {
    pub received_at_ms: u64,
    pub interface: String,
    pub peer: String,
    pub sending_application: String,
    pub sending_facility: String,
    pub message_type: String,
    pub control_id: String,
    /// PID-3.1, empty when there is none.
    pub patient_id: String,
    pub size: usize,
    /// What the sender got: the MSA-1 code, `none` or `closed`.
    pub ack_code: String,
    /// Why it was not accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The stored message (accepted ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<u64>,
    /// A retransmission answered with the earlier message's ACK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<u64>,
    /// The connectors it was queued for.
    #[serde(default)]
    pub connectors: Vec<String>,
    /// The ACK sent, for accepted messages (header and MSA only, no patient
    /// data); refused ones keep theirs with the message body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<String>,
}

/// A connector's state for a message, as indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Queued,
    Delivered,
    Dead,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Delivered => "delivered",
            State::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        match text {
            "queued" => Some(State::Queued),
            "delivered" => Some(State::Delivered),
            "dead" => Some(State::Dead),
            _ => None,
        }
    }
}

/// One step of a message's life on one connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEvent {
    pub at_ms: u64,
    pub connector: String,
    /// `queued`, `attempt` (failed), `delivered`, `dead`, `replayed`, `purged`, `resent`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Who asked, for actions through the admin API (the client's address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl JournalEvent {
    pub fn new(connector: &str, event: &str) -> JournalEvent {
        JournalEvent { at_ms: crate::outbox::now_ms(), connector: connector.to_string(), event: event.to_string(), attempt: None, detail: None, by: None }
    }
}

/// `[message length u32][message][ACK]`.
pub fn encode_body(raw: &[u8], ack: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + raw.len() + ack.len());
    out.extend_from_slice(&(raw.len() as u32).to_be_bytes());
    out.extend_from_slice(raw);
    out.extend_from_slice(ack);
    out
}

pub fn decode_body(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(value.get(..4)?.try_into().ok()?) as usize;
    let raw = value.get(4..4 + len)?;
    Some((raw, &value[4 + len..]))
}
