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
}

impl Committer {
    pub fn commit(&mut self, requests: &mut Vec<CommitRequest>) {
        let result = self.write(requests);
        if let Err(err) = &result {
            tracing::error!(error = %err, messages = requests.len(), "durable write failed; the batch is answered with AE");
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

        for CommitRequest { message, .. } in requests {
            let dedupe_on = !self.dedupe_window.is_zero();
            if dedupe_on {
                let earlier = match pending.get(&message.dedupe_key[..]) {
                    Some(entry) => Some(entry.clone()),
                    None => self.db.get_cf(&dedupe, &message.dedupe_key)?.as_deref().and_then(DedupeEntry::decode),
                };
                if let Some(earlier) = earlier.filter(|e| within(e.received_at_ms, message.meta.received_at_ms, self.dedupe_window)) {
                    if earlier.content_hash == message.content_hash {
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
            batch.put_cf(&messages, keys::message_key(id), encode_message(&message.meta, &message.raw));
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

        if next_id != self.next_message_id {
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

fn within(earlier_ms: u64, now_ms: u64, window: Duration) -> bool {
    now_ms.saturating_sub(earlier_ms) <= window.as_millis() as u64
}
