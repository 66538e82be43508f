//! Writing one group of messages: decide duplicates, assign message IDs and
//! per-connector sequence numbers, write everything as one `WriteBatch` with
//! the WAL synced, answer every waiting connection. Only one group is written
//! at a time (the store's group commit sees to it), so sequence numbers are
//! monotonic and each connector's outbox is in commit order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rocksdb::{DB, WriteBatch, WriteOptions};
use tokio::sync::oneshot;

use super::keys;
use super::queue::Activity;
use super::record::{DedupeEntry, MessageMeta, OutboxValue, encode_message};
use super::{Committed, StoreError};
use crate::journal::{Journal, JournalEvent, JournalFacts, JournalRecord, State};

/// An accepted message, ready to be made durable.
#[derive(Debug)]
pub struct NewMessage {
    pub meta: MessageMeta,
    pub raw: Bytes,
    /// Raw MSH-3, MSH-4 and MSH-10, the duplicate key.
    pub dedupe_key: Vec<u8>,
    pub content_hash: u128,
    /// The connectors whose outbox takes it, in config order.
    pub connectors: Vec<Arc<str>>,
    /// The ACK that will be sent if this commit succeeds, kept for duplicates.
    pub ack: Option<Bytes>,
    /// What the journal records beside the header (`None`: not journalled).
    pub journal: Option<JournalFacts>,
}

pub(super) struct CommitRequest {
    pub message: NewMessage,
    pub reply: oneshot::Sender<Result<Committed, StoreError>>,
}

pub(super) struct Committer {
    pub db: Arc<DB>,
    pub dedupe_window: Duration,
    pub next_message_id: u64,
    pub last_seq: HashMap<Arc<str>, u64>,
    /// Queue depths and the delivery workers' wake-ups.
    pub activity: Arc<Activity>,
    pub journal: Journal,
    /// Writes that add messages wait for room on the disk.
    pub disk: Arc<super::DiskSpace>,
}

impl Committer {
    pub fn commit(&mut self, requests: &mut Vec<CommitRequest>) {
        let result = self.write(requests);
        match &result {
            // DiskSpace logs the shortage once when it starts; a line per batch would flood the log while it lasts.
            Err(err @ StoreError::DiskFull(_)) => {
                tracing::debug!(error = %err, messages = requests.len(), "batch refused for lack of disk space; answered with AE")
            }
            Err(err) => tracing::error!(error = %err, messages = requests.len(), "durable write failed; the batch is answered with AE"),
            Ok(_) => {}
        }
        for (i, request) in requests.drain(..).enumerate() {
            let outcome = match &result {
                Ok(outcomes) => Ok(outcomes[i].clone()),
                Err(err) => Err(err.clone()),
            };
            // A connection that went away no longer waits for its answer.
            let _ = request.reply.send(outcome);
        }
    }

    fn write(&mut self, requests: &[CommitRequest]) -> Result<Vec<Committed>, StoreError> {
        self.disk.ensure_room()?;
        for connector in requests.iter().flat_map(|r| &r.message.connectors) {
            self.know(connector)?;
        }
        let messages = self.db.cf_handle(keys::MESSAGES).ok_or(StoreError::MissingColumnFamily(keys::MESSAGES))?;
        let outbox = self.db.cf_handle(keys::OUTBOX).ok_or(StoreError::MissingColumnFamily(keys::OUTBOX))?;
        let dedupe = self.db.cf_handle(keys::DEDUPE).ok_or(StoreError::MissingColumnFamily(keys::DEDUPE))?;
        let meta = self.db.cf_handle(keys::META).ok_or(StoreError::MissingColumnFamily(keys::META))?;

        let mut batch = WriteBatch::default();
        let mut outcomes = Vec::with_capacity(requests.len());
        // Dedupe entries written by this batch, so duplicates within it are found too.
        let mut pending: HashMap<&[u8], DedupeEntry> = HashMap::new();
        let mut next_id = self.next_message_id;
        let mut last_seq = self.last_seq.clone();
        let mut queued: HashMap<Arc<str>, u64> = HashMap::new();
        // A batch of duplicates only still writes their journal entries.
        let mut journalled = false;

        for CommitRequest { message, .. } in requests {
            let dedupe_on = !self.dedupe_window.is_zero();
            if dedupe_on {
                let earlier = match pending.get(&message.dedupe_key[..]) {
                    Some(entry) => Some(entry.clone()),
                    None => self.db.get_cf(&dedupe, &message.dedupe_key)?.as_deref().and_then(DedupeEntry::decode),
                };
                if let Some(earlier) = earlier.filter(|e| within(e.received_at_ms, message.meta.received_at_ms, self.dedupe_window)) {
                    if earlier.content_hash == message.content_hash {
                        if let Some(facts) = message.journal.as_ref().filter(|_| self.journal.enabled()) {
                            let record = journal_record(message, facts, None, Some(earlier.message_id));
                            let id = self.journal.next_id(message.meta.received_at_ms);
                            // Nothing is stored for a duplicate: the journal keeps its body itself.
                            self.journal.add_message(&mut batch, id, &record, Some((&message.raw, earlier.ack.as_deref().unwrap_or_default())))?;
                            journalled = true;
                        }
                        outcomes.push(Committed::Duplicate { message_id: earlier.message_id, ack: earlier.ack });
                        continue;
                    }
                    tracing::warn!(
                        control_id = %message.meta.control_id,
                        sender = %message.meta.sending_application,
                        earlier_message_id = earlier.message_id,
                        "control ID reused with different content; stored as a new message"
                    );
                }
            }
            let id = next_id;
            next_id += 1;
            let mut stored = message.meta.clone();
            if let Some(facts) = message.journal.as_ref().filter(|_| self.journal.enabled()) {
                let journal_id = self.journal.next_id(message.meta.received_at_ms);
                let record = journal_record(message, facts, Some(id), None);
                self.journal.add_message(&mut batch, journal_id, &record, None)?;
                stored.journal_id = Some(journal_id);
                journalled = true;
            }
            batch.put_cf(&messages, keys::message_key(id), encode_message(&stored, &message.raw));
            for connector in &message.connectors {
                let seq = last_seq.entry(connector.clone()).or_insert(0);
                *seq += 1;
                batch.put_cf(&outbox, keys::queue_key(connector, *seq), OutboxValue::new(id).encode());
                *queued.entry(connector.clone()).or_insert(0) += 1;
            }
            if !message.connectors.is_empty() {
                batch.put_cf(&meta, keys::refs_key(id), (message.connectors.len() as u32).to_be_bytes());
            }
            if dedupe_on {
                let entry =
                    DedupeEntry { received_at_ms: message.meta.received_at_ms, content_hash: message.content_hash, message_id: id, ack: message.ack.clone() };
                batch.put_cf(&dedupe, &message.dedupe_key, entry.encode());
                pending.insert(&message.dedupe_key, entry);
            }
            outcomes.push(Committed::Stored { message_id: id });
        }

        if next_id != self.next_message_id || journalled {
            // Numbers advance even if the write fails: a batch that reached
            // the WAL before the failure must never be overwritten.
            let previous_seq = std::mem::replace(&mut self.last_seq, last_seq);
            self.next_message_id = next_id;
            batch.put_cf(&meta, keys::NEXT_MESSAGE_ID, next_id.to_be_bytes());
            for (connector, seq) in &self.last_seq {
                if previous_seq.get(connector) != Some(seq) {
                    batch.put_cf(&meta, keys::last_seq_key(connector), seq.to_be_bytes());
                }
            }
            let mut options = WriteOptions::default();
            options.set_sync(true);
            self.db.write_opt(batch, &options)?;
            self.activity.enqueued(&queued);
        }
        Ok(outcomes)
    }

    /// Appends messages to the tail of `connector`'s outbox (a dead-letter
    /// replay): sequence numbers come from the same counter as new
    /// messages, so the order stays total. `batch` holds the caller's other
    /// changes (the dead-letter deletions) and is written synced.
    pub fn append(&mut self, connector: &Arc<str>, message_ids: &[u64], mut batch: WriteBatch) -> Result<(), StoreError> {
        self.know(connector)?;
        let outbox = self.db.cf_handle(keys::OUTBOX).ok_or(StoreError::MissingColumnFamily(keys::OUTBOX))?;
        let meta = self.db.cf_handle(keys::META).ok_or(StoreError::MissingColumnFamily(keys::META))?;
        let seq = self.last_seq.entry(connector.clone()).or_insert(0);
        for &id in message_ids {
            *seq += 1;
            batch.put_cf(&outbox, keys::queue_key(connector, *seq), OutboxValue::new(id).encode());
        }
        batch.put_cf(&meta, keys::last_seq_key(connector), seq.to_be_bytes());
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options)?;
        self.activity.enqueued(&HashMap::from([(connector.clone(), message_ids.len() as u64)]));
        Ok(())
    }
}

impl Committer {
    /// Queues a journalled message again on `connector` (`sluice messages
    /// resend`): stored anew (the first copy may be delivered and gone),
    /// appended to the outbox's tail, the resend audited in the journal;
    /// one synced write. Returns the new message ID.
    pub fn resend(&mut self, connector: &Arc<str>, mut meta: MessageMeta, raw: &[u8], journal_id: u64, by: &str) -> Result<u64, StoreError> {
        self.disk.ensure_room()?;
        let messages = self.db.cf_handle(keys::MESSAGES).ok_or(StoreError::MissingColumnFamily(keys::MESSAGES))?;
        let meta_cf = self.db.cf_handle(keys::META).ok_or(StoreError::MissingColumnFamily(keys::META))?;
        let id = self.next_message_id;
        meta.journal_id = Some(journal_id);
        let mut batch = WriteBatch::default();
        batch.put_cf(messages, keys::message_key(id), encode_message(&meta, raw));
        batch.put_cf(meta_cf, keys::refs_key(id), 1u32.to_be_bytes());
        batch.put_cf(meta_cf, keys::NEXT_MESSAGE_ID, (id + 1).to_be_bytes());
        let event = JournalEvent { by: Some(by.to_string()), ..JournalEvent::new(connector, "resent") };
        self.journal.add_event(&mut batch, journal_id, &event)?;
        self.journal.move_state(&mut batch, journal_id, connector, None, Some(State::Queued))?;
        // As in `write`: the number advances even if the write fails.
        self.next_message_id = id + 1;
        self.append(connector, &[id], batch)?;
        Ok(id)
    }

    /// Loads the last sequence number of a connector added since the store
    /// opened (a config reload), so that its numbering continues where an
    /// earlier connector of that name left off instead of overwriting it.
    fn know(&mut self, connector: &Arc<str>) -> Result<(), StoreError> {
        if !self.last_seq.contains_key(connector) {
            let meta = self.db.cf_handle(keys::META).ok_or(StoreError::MissingColumnFamily(keys::META))?;
            let seq = self.db.get_cf(meta, keys::last_seq_key(connector))?.as_deref().and_then(keys::read_u64).unwrap_or(0);
            self.last_seq.insert(connector.clone(), seq);
        }
        Ok(())
    }
}

fn journal_record(message: &NewMessage, facts: &JournalFacts, message_id: Option<u64>, duplicate_of: Option<u64>) -> JournalRecord {
    let meta = &message.meta;
    JournalRecord {
        received_at_ms: meta.received_at_ms,
        interface: facts.interface.clone(),
        peer: meta.peer.clone(),
        sending_application: meta.sending_application.clone(),
        sending_facility: meta.sending_facility.clone(),
        message_type: meta.message_type.clone(),
        control_id: meta.control_id.clone(),
        patient_id: facts.patient_id.clone(),
        size: message.raw.len(),
        ack_code: facts.ack_code.clone(),
        reason: facts.reason.clone(),
        message_id,
        duplicate_of,
        // A duplicate is not queued again.
        connectors: if duplicate_of.is_some() { Vec::new() } else { message.connectors.iter().map(|c| c.to_string()).collect() },
        ack: message.ack.as_ref().filter(|_| duplicate_of.is_none()).map(|ack| String::from_utf8_lossy(ack).into_owned()),
    }
}

fn within(earlier_ms: u64, now_ms: u64, window: Duration) -> bool {
    now_ms.saturating_sub(earlier_ms) <= window.as_millis() as u64
}
