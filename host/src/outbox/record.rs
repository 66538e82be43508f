//! What the store keeps per message and per dedupe entry.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

const RECORD_VERSION: u8 = 1;

/// Facts about a stored message, kept beside its raw bytes. Text fields are
/// lossy views for people; `raw` is the authoritative message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    pub received_at_ms: u64,
    pub peer: String,
    pub sending_application: String,
    pub sending_facility: String,
    pub message_type: String,
    pub control_id: String,
    /// The message's journal entry, where its delivery events go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_id: Option<u64>,
}

/// `[version][meta length u32][meta JSON][raw message]`.
pub fn encode_message(meta: &MessageMeta, raw: &[u8]) -> Vec<u8> {
    let meta = serde_json::to_vec(meta).expect("meta serialises");
    let mut out = Vec::with_capacity(1 + 4 + meta.len() + raw.len());
    out.push(RECORD_VERSION);
    out.extend_from_slice(&(meta.len() as u32).to_be_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(raw);
    out
}

pub fn decode_message(value: &[u8]) -> Option<(MessageMeta, Bytes)> {
    if value.first() != Some(&RECORD_VERSION) {
        return None;
    }
    let len = u32::from_be_bytes(value.get(1..5)?.try_into().ok()?) as usize;
    let meta = serde_json::from_slice(value.get(5..5 + len)?).ok()?;
    Some((meta, Bytes::copy_from_slice(&value[5 + len..])))
}

/// An outbox entry's value: `[message ID u64][failed attempts u32][last error]`.
/// The first eight bytes alone (as the first version wrote) read as no attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxValue {
    pub message_id: u64,
    pub attempts: u32,
    pub last_error: Option<String>,
}

impl OutboxValue {
    pub fn new(message_id: u64) -> OutboxValue {
        OutboxValue { message_id, attempts: 0, last_error: None }
    }

    pub fn encode(&self) -> Vec<u8> {
        let error = self.last_error.as_deref().unwrap_or("");
        let mut out = Vec::with_capacity(12 + error.len());
        out.extend_from_slice(&self.message_id.to_be_bytes());
        if self.attempts > 0 || !error.is_empty() {
            out.extend_from_slice(&self.attempts.to_be_bytes());
            out.extend_from_slice(error.as_bytes());
        }
        out
    }

    pub fn decode(value: &[u8]) -> Option<OutboxValue> {
        let message_id = u64::from_be_bytes(value.get(0..8)?.try_into().ok()?);
        let attempts = value.get(8..12).map_or(0, |b| u32::from_be_bytes(b.try_into().unwrap_or_default()));
        let error = value.get(12..).unwrap_or_default();
        let last_error = (!error.is_empty()).then(|| String::from_utf8_lossy(error).into_owned());
        Some(OutboxValue { message_id, attempts, last_error })
    }
}

/// A dead-letter entry's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadRecord {
    pub message_id: u64,
    pub attempts: u32,
    pub error: String,
    pub dead_at_ms: u64,
}

/// A message remembered for duplicate suppression: when it arrived, a hash of
/// its content, and the ACK it got (absent when none was sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupeEntry {
    pub received_at_ms: u64,
    pub content_hash: u128,
    pub message_id: u64,
    pub ack: Option<Bytes>,
}

impl DedupeEntry {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(33 + self.ack.as_ref().map_or(0, |a| a.len()));
        out.extend_from_slice(&self.received_at_ms.to_be_bytes());
        out.extend_from_slice(&self.content_hash.to_be_bytes());
        out.extend_from_slice(&self.message_id.to_be_bytes());
        match &self.ack {
            Some(ack) => {
                out.push(1);
                out.extend_from_slice(ack);
            }
            None => out.push(0),
        }
        out
    }

    pub fn decode(value: &[u8]) -> Option<DedupeEntry> {
        let received_at_ms = u64::from_be_bytes(value.get(0..8)?.try_into().ok()?);
        let content_hash = u128::from_be_bytes(value.get(8..24)?.try_into().ok()?);
        let message_id = u64::from_be_bytes(value.get(24..32)?.try_into().ok()?);
        let ack = match value.get(32)? {
            1 => Some(Bytes::copy_from_slice(&value[33..])),
            _ => None,
        };
        Some(DedupeEntry { received_at_ms, content_hash, message_id, ack })
    }

    /// Just the arrival time, for the expiry compaction filter.
    pub fn received_at(value: &[u8]) -> Option<u64> {
        Some(u64::from_be_bytes(value.get(0..8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let meta = MessageMeta {
            received_at_ms: 7,
            peer: "127.0.0.1:1".into(),
            sending_application: "A".into(),
            sending_facility: "F".into(),
            message_type: "ADT^A01".into(),
            control_id: "X".into(),
            journal_id: Some(9),
        };
        assert_eq!(decode_message(&encode_message(&meta, b"MSH|raw\xff")), Some((meta, Bytes::from_static(b"MSH|raw\xff"))));
        for value in [OutboxValue::new(3), OutboxValue { message_id: 4, attempts: 2, last_error: Some("HTTP 503".into()) }] {
            assert_eq!(OutboxValue::decode(&value.encode()), Some(value));
        }
        for ack in [None, Some(Bytes::from_static(b"MSH|ack"))] {
            let entry = DedupeEntry { received_at_ms: 1, content_hash: u128::MAX - 3, message_id: 9, ack };
            assert_eq!(DedupeEntry::decode(&entry.encode()), Some(entry));
        }
    }
}
