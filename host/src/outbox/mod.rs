//! The durable store: every accepted message and its outbox entries, written
//! together with the WAL synced before the sender gets its ACK (DESIGN §4).

mod committer;
mod disk;
mod keys;
mod queue;
mod record;
mod rejected;
mod store;

pub use committer::NewMessage;
pub use disk::DiskSpace;
pub use keys::dedupe_key;
pub(crate) use keys::read_u64;
pub use queue::{DeadLetter, DeliveryActivity, QueueDepth, Queued, Queues, Selection};
pub use record::MessageMeta;
pub use rejected::{Rejected, RejectedEntry, RejectedRecord};
pub use store::{CommitHandle, Store, StoreOptions, now_ms};

/// A stored message's bytes, while an outbox or dead-letter queue holds it.
pub(crate) fn stored_message(db: &rocksdb::DB, id: u64) -> Result<Option<bytes::Bytes>, StoreError> {
    let messages = db.cf_handle(keys::MESSAGES).ok_or(StoreError::MissingColumnFamily(keys::MESSAGES))?;
    Ok(db.get_cf(messages, keys::message_key(id))?.as_deref().and_then(record::decode_message).map(|(_, raw)| raw))
}

/// The result of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// Written; durable in every outbox it was routed to.
    Stored { message_id: u64 },
    /// The same message (sender, control ID, content) was stored within the
    /// dedupe window: nothing new is written, the earlier ACK is repeated.
    Duplicate { message_id: u64, ack: Option<bytes::Bytes> },
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("column family `{0}` is missing from the store")]
    MissingColumnFamily(&'static str),
    #[error("the store is shut down")]
    Closed,
    #[error("{0}")]
    BadQuery(String),
    #[error("{0}")]
    DiskFull(String),
}

#[cfg(test)]
mod tests;
