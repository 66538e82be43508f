//! The rejected store: every message an interface did not accept (AR, AE,
//! or a connection closed instead of them), kept in its wire form with the
//! reason, so that nothing a sender sent is lost even when it was refused.
//! Keys are IDs that grow with time (`received ms << 20 | n`), so listing
//! is newest first without an index and expiry is a compaction filter on
//! the key alone, never a scan.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rocksdb::{DB, IteratorMode, Options, WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize};

use super::{StoreError, keys, now_ms};
use crate::journal::{Journal, JournalRecord};

const ID_SHIFT: u32 = 20;
const RECORD_VERSION: u8 = 1;

/// What is known of one refused message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRecord {
    pub interface: String,
    pub peer: String,
    pub received_at_ms: u64,
    pub sending_application: String,
    pub sending_facility: String,
    pub message_type: String,
    pub control_id: String,
    /// The ACK code the sender got (`AR`, `AE`, `CR`, `CE`), `closed` when
    /// the connection was closed instead, `none` when no ACK was sent.
    pub answer: String,
    pub reason: String,
    /// Only the first bytes were kept (a frame over `max_frame_size`).
    pub truncated: bool,
}

/// A listed entry: its ID, what is known, its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedEntry {
    pub id: u64,
    #[serde(flatten)]
    pub record: RejectedRecord,
    pub size: usize,
}

#[derive(Clone)]
pub struct Rejected {
    db: Arc<DB>,
    last_id: Arc<Mutex<u64>>,
    /// Refused messages are journalled too, in the same write.
    journal: Journal,
    disk: Arc<super::DiskSpace>,
}

/// Column family options: refused messages older than `retention` go at compaction.
pub(super) fn rejected_options(mut opts: Options, retention: Duration) -> Options {
    if !retention.is_zero() {
        let retention_ms = retention.as_millis() as u64;
        opts.set_compaction_filter("sluice-rejected-expiry", move |_level: u32, key: &[u8], _value: &[u8]| match keys::read_u64(key) {
            Some(id) if now_ms().saturating_sub(id >> ID_SHIFT) > retention_ms => rocksdb::compaction_filter::Decision::Remove,
            _ => rocksdb::compaction_filter::Decision::Keep,
        });
    }
    opts
}

impl Rejected {
    pub(super) fn open(db: Arc<DB>, journal: Journal, disk: Arc<super::DiskSpace>) -> Result<Rejected, StoreError> {
        let cf = db.cf_handle(keys::REJECTED).ok_or(StoreError::MissingColumnFamily(keys::REJECTED))?;
        let last_id = db.iterator_cf(cf, IteratorMode::End).next().transpose()?.and_then(|(key, _)| keys::read_u64(&key)).unwrap_or(0);
        Ok(Rejected { db: db.clone(), last_id: Arc::new(Mutex::new(last_id)), journal, disk })
    }

    /// Writes one refused message, and its journal entry with the ACK sent
    /// (`ack`, empty for none) and PID-3.1, synced (its sender will not send
    /// it again); returns its ID.
    pub fn keep(&self, record: &RejectedRecord, raw: &[u8], ack: &[u8], patient_id: &str) -> Result<u64, StoreError> {
        self.disk.ensure_room()?;
        let id = {
            let mut last = super::store::lock(&self.last_id);
            *last = (*last + 1).max(record.received_at_ms << ID_SHIFT);
            *last
        };
        let cf = self.db.cf_handle(keys::REJECTED).ok_or(StoreError::MissingColumnFamily(keys::REJECTED))?;
        let mut batch = WriteBatch::default();
        batch.put_cf(cf, id.to_be_bytes(), encode(record, raw));
        let journalled = JournalRecord {
            received_at_ms: record.received_at_ms,
            interface: record.interface.clone(),
            peer: record.peer.clone(),
            sending_application: record.sending_application.clone(),
            sending_facility: record.sending_facility.clone(),
            message_type: record.message_type.clone(),
            control_id: record.control_id.clone(),
            patient_id: patient_id.to_string(),
            size: raw.len(),
            ack_code: record.answer.clone(),
            reason: Some(record.reason.clone()),
            message_id: None,
            duplicate_of: None,
            connectors: Vec::new(),
            ack: None,
        };
        self.journal.add_message(&mut batch, self.journal.next_id(record.received_at_ms), &journalled, Some((raw, ack)))?;
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options)?;
        Ok(id)
    }

    /// Up to `limit` entries older than `before` (newest first), of one interface or all.
    pub fn list(&self, interface: Option<&str>, before: Option<u64>, limit: usize) -> Result<Vec<RejectedEntry>, StoreError> {
        let cf = self.db.cf_handle(keys::REJECTED).ok_or(StoreError::MissingColumnFamily(keys::REJECTED))?;
        let start = before.map(|id| id.saturating_sub(1).to_be_bytes());
        let mode = match &start {
            Some(key) => IteratorMode::From(key, rocksdb::Direction::Reverse),
            None => IteratorMode::End,
        };
        let mut entries = Vec::new();
        for item in self.db.iterator_cf(cf, mode) {
            let (key, value) = item?;
            let (Some(id), Some((record, raw))) = (keys::read_u64(&key), decode(&value)) else { continue };
            if before.is_some_and(|b| id >= b) || interface.is_some_and(|i| i != record.interface) {
                continue;
            }
            entries.push(RejectedEntry { id, record, size: raw.len() });
            if entries.len() >= limit {
                break;
            }
        }
        Ok(entries)
    }

    pub fn get(&self, id: u64) -> Result<Option<(RejectedRecord, Bytes)>, StoreError> {
        let cf = self.db.cf_handle(keys::REJECTED).ok_or(StoreError::MissingColumnFamily(keys::REJECTED))?;
        Ok(self.db.get_cf(cf, id.to_be_bytes())?.as_deref().and_then(decode))
    }
}

/// `[version][record length u32][record JSON][raw bytes]`.
fn encode(record: &RejectedRecord, raw: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(record).expect("a record serialises");
    let mut out = Vec::with_capacity(5 + json.len() + raw.len());
    out.push(RECORD_VERSION);
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(raw);
    out
}

fn decode(value: &[u8]) -> Option<(RejectedRecord, Bytes)> {
    if value.first() != Some(&RECORD_VERSION) {
        return None;
    }
    let len = u32::from_be_bytes(value.get(1..5)?.try_into().ok()?) as usize;
    let record = serde_json::from_slice(value.get(5..5 + len)?).ok()?;
    Some((record, Bytes::copy_from_slice(&value[5 + len..])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{Store, StoreOptions};

    fn record(interface: &str, at: u64) -> RejectedRecord {
        RejectedRecord {
            interface: interface.into(),
            peer: "127.0.0.1:9".into(),
            received_at_ms: at,
            sending_application: "EHR".into(),
            sending_facility: "HOSP".into(),
            message_type: "ADT^A01".into(),
            control_id: format!("C{at}"),
            answer: "AR".into(),
            reason: "PID-3 is required".into(),
            truncated: false,
        }
    }

    #[test]
    fn kept_messages_list_newest_first_by_interface_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions::plain();
        let store = Store::open(dir.path(), options.clone(), &[]).unwrap();
        let rejected = store.rejected();
        let first = rejected.keep(&record("lab", 1_000), b"MSH|first", b"", "").unwrap();
        let second = rejected.keep(&record("adt", 1_000), b"MSH|second", b"", "").unwrap();
        let third = rejected.keep(&record("lab", 999), b"MSH|third", b"", "").unwrap();
        assert!(first < second && second < third, "IDs grow even when the clock does not");
        let lab: Vec<u64> = rejected.list(Some("lab"), None, 10).unwrap().iter().map(|e| e.id).collect();
        assert_eq!(lab, [third, first]);
        let page: Vec<u64> = rejected.list(None, Some(third), 1).unwrap().iter().map(|e| e.id).collect();
        assert_eq!(page, [second]);
        drop(rejected);
        store.close().unwrap();

        let store = Store::open(dir.path(), options, &[]).unwrap();
        let (kept, raw) = store.rejected().get(second).unwrap().unwrap();
        assert_eq!((kept.interface.as_str(), &raw[..]), ("adt", &b"MSH|second"[..]));
        assert!(store.rejected().keep(&record("lab", 5), b"x", b"", "").unwrap() > third, "IDs continue after a restart");
    }
}
