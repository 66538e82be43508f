//! The message journal (DESIGN §7): every message received, accepted or
//! not, with what its sender got and each connector's history, found by
//! control ID, patient, type, sender, ACK code, connector state and time.
//! It lives in the store's own RocksDB, in column families of its own.
//! An accepted message's journal entry goes into the same `WriteBatch` as
//! its outbox entries (no extra fsync); delivery events go into the batches
//! the delivery workers write anyway.

mod keys;
mod record;
mod search;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rocksdb::{ColumnFamilyDescriptor, DB, Options, WriteBatch};
use serde::{Deserialize, Serialize};

pub use keys::{ALL as COLUMN_FAMILIES, id_at, time_of};
pub use record::{JournalEvent, JournalRecord, State};
pub use search::{MAX_LIMIT, Query, Shown, Summary};

use crate::outbox::{StoreError, now_ms};
use keys::By;

/// `[journal]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// Off: nothing is journalled (searches find nothing).
    pub enabled: bool,
    /// How long message bodies (the message and its ACK) are kept; 0 keeps none.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How long the rest (header facts, ACK code, connector history) is kept.
    #[serde(with = "humantime_serde")]
    pub metadata_retention: Duration,
    /// How often expired entries are compacted away (disk use falls then).
    #[serde(with = "humantime_serde")]
    pub compact_interval: Duration,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            enabled: true,
            retention: Duration::from_secs(7 * 24 * 3600),
            metadata_retention: Duration::from_secs(30 * 24 * 3600),
            compact_interval: Duration::from_secs(3600),
        }
    }
}

/// The facts a message brings to the journal besides its header.
#[derive(Debug, Clone, Default)]
pub struct JournalFacts {
    pub interface: String,
    pub patient_id: String,
    pub ack_code: String,
    pub reason: Option<String>,
}

#[derive(Clone)]
pub struct Journal {
    db: Arc<DB>,
    config: JournalConfig,
    last_id: Arc<Mutex<u64>>,
    /// Event numbers: microseconds at start, then counting, so a message's
    /// events sort in the order they happened, across restarts.
    next_event: Arc<AtomicU64>,
}

/// Column family descriptors with their expiry filters.
pub fn descriptors(config: &JournalConfig, base: impl Fn() -> Options) -> Vec<ColumnFamilyDescriptor> {
    let expiring = |name: &'static str, keep: Duration, id_of: fn(&[u8]) -> Option<u64>| {
        let mut opts = base();
        if !keep.is_zero() || name == keys::BODIES {
            let keep_ms = keep.as_millis() as u64;
            opts.set_compaction_filter(name, move |_level: u32, key: &[u8], _value: &[u8]| match id_of(key) {
                Some(id) if now_ms().saturating_sub(time_of(id)) > keep_ms => rocksdb::compaction_filter::Decision::Remove,
                _ => rocksdb::compaction_filter::Decision::Keep,
            });
        }
        ColumnFamilyDescriptor::new(name, opts)
    };
    vec![
        expiring(keys::RECORDS, config.metadata_retention, keys::read_u64),
        expiring(keys::BODIES, config.retention, keys::read_u64),
        expiring(keys::EVENTS, config.metadata_retention, keys::read_u64),
        expiring(keys::INDEX, config.metadata_retention, keys::index_id),
    ]
}

impl Journal {
    pub fn open(db: Arc<DB>, config: JournalConfig) -> Result<Journal, StoreError> {
        let records = cf(&db, keys::RECORDS)?;
        let last_id = db.iterator_cf(records, rocksdb::IteratorMode::End).next().transpose()?.and_then(|(key, _)| keys::read_u64(&key)).unwrap_or(0);
        let next_event = now_ms() * 1000;
        Ok(Journal { db, config, last_id: Arc::new(Mutex::new(last_id)), next_event: Arc::new(AtomicU64::new(next_event)) })
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    pub fn config(&self) -> &JournalConfig {
        &self.config
    }

    /// A new journal ID for a message received at `received_ms`: after every earlier one.
    pub fn next_id(&self, received_ms: u64) -> u64 {
        let mut last = self.last_id.lock().unwrap_or_else(PoisonError::into_inner);
        *last = (*last + 1).max(id_at(received_ms));
        *last
    }

    /// Adds a message's record and index entries to `batch`, and its body
    /// when given. An accepted message's body is already in the batch (the
    /// stored message): the journal takes it over when its last outbox
    /// releases it ([`Journal::keep_body`]), so it is written once on the
    /// ACK path. Each connector it was queued for starts out `queued`.
    pub fn add_message(&self, batch: &mut WriteBatch, id: u64, record: &JournalRecord, body: Option<(&[u8], &[u8])>) -> Result<(), StoreError> {
        if !self.config.enabled {
            return Ok(());
        }
        batch.put_cf(cf(&self.db, keys::RECORDS)?, id.to_be_bytes(), serde_json::to_vec(record).unwrap_or_default());
        if let Some((raw, ack)) = body {
            self.keep_body(batch, id, raw, ack)?;
        }
        let index = cf(&self.db, keys::INDEX)?;
        let kind = message_kind(&record.message_type);
        let entries = [
            (By::ControlId, record.control_id.as_str()),
            (By::Patient, record.patient_id.as_str()),
            (By::Type, kind.as_str()),
            (By::Application, record.sending_application.as_str()),
            // Positive ACKs are nearly every message: an index of them would
            // select nothing, so a search for them walks the records instead.
            (By::Ack, if is_positive(&record.ack_code) { "" } else { record.ack_code.as_str() }),
        ];
        for (by, value) in entries.into_iter().filter(|(_, value)| !value.is_empty()) {
            batch.put_cf(index, keys::index_key(by, value, id, None), []);
        }
        for connector in &record.connectors {
            batch.put_cf(index, keys::index_key(By::State, State::Queued.as_str(), id, Some(connector)), []);
        }
        Ok(())
    }

    /// Adds a message's body (the message and the ACK sent) to `batch`, unless bodies are not kept.
    pub fn keep_body(&self, batch: &mut WriteBatch, id: u64, raw: &[u8], ack: &[u8]) -> Result<(), StoreError> {
        if self.config.enabled && !self.config.retention.is_zero() {
            batch.put_cf(cf(&self.db, keys::BODIES)?, id.to_be_bytes(), record::encode_body(raw, ack));
        }
        Ok(())
    }

    /// Adds one event of a message to `batch`; with `to`, the connector's
    /// indexed state moves from `from` to it.
    pub fn add_event(&self, batch: &mut WriteBatch, id: u64, event: &JournalEvent) -> Result<(), StoreError> {
        if !self.config.enabled {
            return Ok(());
        }
        let n = self.next_event.fetch_add(1, Ordering::Relaxed);
        batch.put_cf(cf(&self.db, keys::EVENTS)?, keys::event_key(id, n), serde_json::to_vec(event).unwrap_or_default());
        Ok(())
    }

    /// Moves a connector's indexed state for a message (`None`: no state, after a purge).
    pub fn move_state(&self, batch: &mut WriteBatch, id: u64, connector: &str, from: Option<State>, to: Option<State>) -> Result<(), StoreError> {
        if !self.config.enabled {
            return Ok(());
        }
        let index = cf(&self.db, keys::INDEX)?;
        if let Some(from) = from {
            batch.delete_cf(index, keys::index_key(By::State, from.as_str(), id, Some(connector)));
        }
        if let Some(to) = to {
            batch.put_cf(index, keys::index_key(By::State, to.as_str(), id, Some(connector)), []);
        }
        Ok(())
    }

    /// Bytes the journal's column families take on disk (files and memtables).
    pub fn disk_bytes(&self) -> u64 {
        keys::ALL
            .iter()
            .filter_map(|name| self.db.cf_handle(name))
            .map(|cf| {
                let property = |p: &str| self.db.property_int_value_cf(cf, p).ok().flatten().unwrap_or(0);
                property("rocksdb.total-sst-files-size") + property("rocksdb.size-all-mem-tables")
            })
            .sum()
    }

    /// Compacts the journal, so that entries past their retention leave the disk.
    pub fn compact(&self) {
        for name in keys::ALL {
            if let Some(cf) = self.db.cf_handle(name) {
                self.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
            }
        }
    }

    /// Runs [`Journal::compact`] every `compact_interval` until `stop`.
    pub fn compact_periodically(&self, stop: tokio_util::sync::CancellationToken) -> tokio::task::JoinHandle<()> {
        let journal = self.clone();
        tokio::spawn(async move {
            let interval = journal.config.compact_interval.max(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stop.cancelled() => return,
                }
                let journal = journal.clone();
                let _ = tokio::task::spawn_blocking(move || journal.compact()).await;
            }
        })
    }

    /// Whether a body received at `id`'s time is still within retention.
    fn body_kept(&self, id: u64) -> bool {
        !self.config.retention.is_zero() && now_ms().saturating_sub(time_of(id)) <= self.config.retention.as_millis() as u64
    }
}

/// AA and CA: accepted, what nearly every message gets.
pub fn is_positive(ack_code: &str) -> bool {
    matches!(ack_code, "AA" | "CA")
}

/// What the sender got, as indexed: ACK codes in capitals, `none` and `closed` as they are.
pub fn ack_label(text: &str) -> String {
    match text.to_ascii_lowercase().as_str() {
        "none" => "none".into(),
        "closed" => "closed".into(),
        _ => text.to_ascii_uppercase(),
    }
}

/// MSH-9's message code and trigger event: `ADT^A01^ADT_A01` → `ADT^A01`.
pub fn message_kind(message_type: &str) -> String {
    message_type.split('^').take(2).collect::<Vec<_>>().join("^")
}

#[cfg(test)]
mod tests;

fn cf<'a>(db: &'a DB, name: &'static str) -> Result<&'a rocksdb::ColumnFamily, StoreError> {
    db.cf_handle(name).ok_or(StoreError::MissingColumnFamily(name))
}
