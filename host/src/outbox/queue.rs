//! A connector's queues as its delivery worker and the admin API see them:
//! the outbox read from the oldest entry, entries removed once delivered,
//! failures noted on the entry, and the dead-letter queue (list, show,
//! replay to the outbox's tail, purge).

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::Notify;

use super::record::MessageMeta;
use super::StoreError;
use super::reader::QueueDepth;

/// One message waiting in a connector's outbox.
#[derive(Debug, Clone)]
pub struct Queued {
    /// Its place in the connector's outbox (arrival order).
    pub seq: u64,
    pub message_id: u64,
    /// Delivery attempts that failed so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub meta: MessageMeta,
    pub raw: Bytes,
}

/// A message in a connector's dead-letter queue.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// Its ID in the queue: the outbox sequence number it had.
    pub id: u64,
    pub message_id: u64,
    pub attempts: u32,
    pub error: String,
    pub dead_at_ms: u64,
    #[serde(flatten)]
    pub meta: MessageMeta,
}

/// Which dead letters an action applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    One(u64),
    All,
}

/// The store's queues, shared by the delivery workers and the admin API.
#[derive(Clone)]
pub struct Queues {
    inner: Arc<Inner>,
}

struct Inner {}

impl Queues {
    /// Connectors known to the store: configured ones, then any others that still have entries.
    pub fn connectors(&self) -> Vec<Arc<str>> {
        todo!()
    }

    /// Outbox and dead-letter depth of every connector (kept in memory, no scan).
    pub fn depths(&self) -> Vec<QueueDepth> {
        todo!()
    }

    /// Notified whenever new entries reach `connector`'s outbox.
    pub fn waker(&self, connector: &str) -> Arc<Notify> {
        todo!()
    }

    /// Up to `limit` outbox entries of `connector` after `after_seq`, oldest first.
    pub fn next_batch(&self, connector: &str, after_seq: u64, limit: usize) -> Result<Vec<Queued>, StoreError> {
        todo!()
    }

    /// Removes a delivered entry (and the message, once no queue holds it).
    pub fn delivered(&self, connector: &str, entry: &Queued) -> Result<(), StoreError> {
        todo!()
    }

    /// Notes a failed attempt on the entry, so a restart resumes the count.
    pub fn record_failure(&self, connector: &str, entry: &Queued, attempts: u32, error: &str) -> Result<(), StoreError> {
        todo!()
    }

    /// Moves an entry from the outbox to the dead-letter queue, in one write.
    pub fn move_to_dead_letter(&self, connector: &str, entry: &Queued, attempts: u32, error: &str) -> Result<(), StoreError> {
        todo!()
    }

    /// `connector`'s outbox from the oldest entry, without the raw messages.
    pub fn outbox(&self, connector: &str, limit: usize) -> Result<Vec<Queued>, StoreError> {
        todo!()
    }

    /// `connector`'s dead letters, oldest first, after `after` (an ID) when given.
    pub fn dead_letters(&self, connector: &str, after: Option<u64>, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        todo!()
    }

    /// One dead letter and its raw message.
    pub fn dead_letter(&self, connector: &str, id: u64) -> Result<Option<(DeadLetter, Bytes)>, StoreError> {
        todo!()
    }

    /// Moves dead letters back to the tail of the outbox, attempts reset.
    /// Returns how many moved.
    pub fn replay(&self, connector: &str, which: Selection) -> Result<u64, StoreError> {
        todo!()
    }

    /// Deletes dead letters for good. Returns how many.
    pub fn purge(&self, connector: &str, which: Selection) -> Result<u64, StoreError> {
        todo!()
    }
}
