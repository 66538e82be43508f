//! A connector's queues as its delivery worker and the admin API see them:
//! the outbox read from the oldest entry, entries removed once delivered,
//! failures noted on the entry, and the dead-letter queue (list, show,
//! replay to the outbox's tail, purge). Writes here are not synced: losing
//! one to a power cut means a message is delivered again or stays dead a
//! little longer, never that one is lost (at-least-once).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rocksdb::{DB, Direction, IteratorMode, ReadOptions, WriteBatch};
use serde::Serialize;
use tokio::sync::Notify;

use super::StoreError;
use super::keys;
use super::record::{DeadRecord, MessageMeta, OutboxValue, decode_message};
use super::store::{CommitHandle, lock, now_ms};
use crate::journal::{Journal, JournalEvent, State};

/// How many messages wait in a connector's outbox and dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    pub connector: String,
    pub outbox: u64,
    pub dead_letter: u64,
}

/// One message waiting in a connector's outbox.
#[derive(Debug, Clone, Serialize)]
pub struct Queued {
    /// Its place in the connector's outbox (arrival order).
    pub seq: u64,
    pub message_id: u64,
    /// Delivery attempts that failed so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    #[serde(flatten)]
    pub meta: MessageMeta,
    #[serde(skip)]
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
    db: Arc<DB>,
    commits: CommitHandle,
    activity: Arc<Activity>,
    /// Serialises reference-count updates (deliveries of one message to
    /// several connectors may finish at the same moment).
    refs: Arc<Mutex<()>>,
    /// Where each delivery step is recorded, in the same write.
    journal: Journal,
}

/// Signed: a worker may finish an entry before the committer that wrote it
/// has counted it (the write is visible first), so a count can dip below
/// zero for a moment.
#[derive(Debug, Default, Clone, Copy)]
struct Depth {
    outbox: i64,
    dead: i64,
}

/// What a connector's deliveries came to since the server started, for the
/// console and the API (kept in memory: it is a view of the moment, not a record).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryActivity {
    pub connector: String,
    pub delivered: u64,
    pub last_delivered_ms: Option<u64>,
    /// The last failed attempt's error (it stays after later successes; compare the times).
    pub last_error: Option<String>,
    pub last_error_ms: Option<u64>,
}

/// What changes as messages are queued and delivered: depths kept in memory
/// (so metrics never scan), the wake-up of each connector's worker, and
/// what its deliveries came to.
#[derive(Default)]
pub(crate) struct Activity {
    depths: Mutex<BTreeMap<Arc<str>, Depth>>,
    wakers: Mutex<HashMap<Arc<str>, Arc<Notify>>>,
    deliveries: Mutex<HashMap<Arc<str>, DeliveryActivity>>,
}

impl Activity {
    /// Counts what the store holds for the configured connectors and any others found.
    pub(super) fn count(db: &DB, configured: &[Arc<str>]) -> Result<Activity, StoreError> {
        let mut depths: BTreeMap<Arc<str>, Depth> = configured.iter().map(|c| (c.clone(), Depth::default())).collect();
        for (cf, dead) in [(keys::OUTBOX, false), (keys::DEAD_LETTER, true)] {
            let handle = db.cf_handle(cf).ok_or(StoreError::MissingColumnFamily(cf))?;
            for item in db.iterator_cf(handle, IteratorMode::Start) {
                let (key, _) = item?;
                let Some((name, _)) = keys::parse_queue_key(&key) else { continue };
                let depth = match depths.get_mut(name) {
                    Some(depth) => depth,
                    None => depths.entry(Arc::from(name)).or_default(),
                };
                if dead { depth.dead += 1 } else { depth.outbox += 1 }
            }
        }
        Ok(Activity { depths: Mutex::new(depths), ..Activity::default() })
    }

    /// New outbox entries were written: count them and wake their workers.
    pub(super) fn enqueued(&self, added: &HashMap<Arc<str>, u64>) {
        {
            let mut depths = lock(&self.depths);
            for (connector, n) in added {
                depths.entry(connector.clone()).or_default().outbox += *n as i64;
            }
        }
        let wakers = lock(&self.wakers);
        for connector in added.keys() {
            if let Some(waker) = wakers.get(connector) {
                waker.notify_one();
            }
        }
    }

    fn adjust(&self, connector: &str, outbox: i64, dead: i64) {
        let mut depths = lock(&self.depths);
        let depth = match depths.get_mut(connector) {
            Some(depth) => depth,
            None => depths.entry(Arc::from(connector)).or_default(),
        };
        depth.outbox += outbox;
        depth.dead += dead;
    }

    fn delivery(&self, connector: &str, note: impl FnOnce(&mut DeliveryActivity)) {
        let mut deliveries = lock(&self.deliveries);
        if !deliveries.contains_key(connector) {
            deliveries.insert(Arc::from(connector), DeliveryActivity { connector: connector.to_string(), ..DeliveryActivity::default() });
        }
        if let Some(activity) = deliveries.get_mut(connector) {
            note(activity);
        }
    }

    fn failed(&self, connector: &str, error: &str) {
        self.delivery(connector, |d| {
            d.last_error = Some(error.to_string());
            d.last_error_ms = Some(now_ms());
        });
    }
}

impl Queues {
    pub(super) fn new(db: Arc<DB>, commits: CommitHandle, activity: Arc<Activity>, journal: Journal) -> Queues {
        Queues { db, commits, activity, refs: Arc::default(), journal }
    }

    /// Adds a journal event (and a state change) for the message behind `meta`, if it is journalled.
    fn journal(&self, batch: &mut WriteBatch, meta: &MessageMeta, event: JournalEvent, from: Option<State>, to: Option<State>) -> Result<(), StoreError> {
        let Some(id) = meta.journal_id else { return Ok(()) };
        let connector = event.connector.clone();
        self.journal.add_event(batch, id, &event)?;
        if from != to {
            self.journal.move_state(batch, id, &connector, from, to)?;
        }
        Ok(())
    }

    /// Queues a journalled message again on `connector`; `by` is who asked. Returns the new message ID.
    pub fn resend(&self, connector: &str, journal_id: u64, by: &str) -> Result<u64, StoreError> {
        let record = self.journal.record(journal_id)?.ok_or_else(|| StoreError::BadQuery(format!("no message {journal_id} in the journal")))?;
        let raw = self
            .journal
            .raw(journal_id)?
            .ok_or_else(|| StoreError::BadQuery(format!("message {journal_id}'s body is no longer kept (journal.retention); it cannot be resent")))?;
        let meta = MessageMeta {
            received_at_ms: record.received_at_ms,
            peer: record.peer,
            sending_application: record.sending_application,
            sending_facility: record.sending_facility,
            message_type: record.message_type,
            control_id: record.control_id,
            journal_id: Some(journal_id),
        };
        let connector: Arc<str> = Arc::from(connector);
        self.commits.with_committer(|committer| committer.resend(&connector, meta, &raw, journal_id, by))
    }

    /// Connectors known to the store: configured ones and any others that have entries.
    pub fn connectors(&self) -> Vec<Arc<str>> {
        lock(&self.activity.depths).keys().cloned().collect()
    }

    /// Makes a configured connector known (listed with zero depths) before its first message.
    pub fn register(&self, connector: &str) {
        let mut depths = lock(&self.activity.depths);
        if !depths.contains_key(connector) {
            depths.insert(Arc::from(connector), Depth::default());
        }
    }

    /// What each known connector's deliveries came to since start-up.
    pub fn deliveries(&self) -> Vec<DeliveryActivity> {
        let deliveries = lock(&self.activity.deliveries);
        self.connectors()
            .iter()
            .map(|name| deliveries.get(name).cloned().unwrap_or_else(|| DeliveryActivity { connector: name.to_string(), ..DeliveryActivity::default() }))
            .collect()
    }

    pub fn knows(&self, connector: &str) -> bool {
        lock(&self.activity.depths).contains_key(connector)
    }

    /// Outbox and dead-letter depth of every connector (kept in memory, no scan).
    pub fn depths(&self) -> Vec<QueueDepth> {
        lock(&self.activity.depths)
            .iter()
            .map(|(name, d)| QueueDepth { connector: name.to_string(), outbox: d.outbox.max(0) as u64, dead_letter: d.dead.max(0) as u64 })
            .collect()
    }

    /// Notified whenever new entries reach `connector`'s outbox.
    pub fn waker(&self, connector: &str) -> Arc<Notify> {
        lock(&self.activity.wakers).entry(Arc::from(connector)).or_default().clone()
    }

    /// Up to `limit` outbox entries of `connector` after `after_seq`, oldest first.
    /// Starting after the last entry handled skips the deletions before it.
    pub fn next_batch(&self, connector: &str, after_seq: u64, limit: usize) -> Result<Vec<Queued>, StoreError> {
        let start = keys::queue_key(connector, after_seq.saturating_add(1));
        self.scan_outbox(connector, &start, limit, true)
    }

    /// `connector`'s outbox from the oldest entry, without the raw messages.
    pub fn outbox(&self, connector: &str, limit: usize) -> Result<Vec<Queued>, StoreError> {
        self.scan_outbox(connector, &keys::queue_prefix(connector), limit, false)
    }

    fn scan_outbox(&self, connector: &str, start: &[u8], limit: usize, with_raw: bool) -> Result<Vec<Queued>, StoreError> {
        let outbox = self.cf(keys::OUTBOX)?;
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(keys::queue_key(connector, u64::MAX));
        let mut entries = Vec::new();
        for item in self.db.iterator_cf_opt(outbox, options, IteratorMode::From(start, Direction::Forward)) {
            if entries.len() >= limit {
                break;
            }
            let (key, value) = item?;
            let (Some((_, seq)), Some(value)) = (keys::parse_queue_key(&key), OutboxValue::decode(&value)) else { continue };
            let Some((meta, raw)) = self.message(value.message_id)? else {
                tracing::error!(connector, seq, message_id = value.message_id, "outbox entry points to a missing message; skipped");
                continue;
            };
            let raw = if with_raw { raw } else { Bytes::new() };
            entries.push(Queued { seq, message_id: value.message_id, attempts: value.attempts, last_error: value.last_error, meta, raw });
        }
        Ok(entries)
    }

    /// Removes a delivered entry (and the message, once no queue holds it).
    pub fn delivered(&self, connector: &str, entry: &Queued) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(keys::OUTBOX)?, keys::queue_key(connector, entry.seq));
        let event = JournalEvent { attempt: Some(entry.attempts + 1), ..JournalEvent::new(connector, "delivered") };
        self.journal(&mut batch, &entry.meta, event, Some(State::Queued), Some(State::Delivered))?;
        self.write_releasing(batch, &[entry.message_id])?;
        self.activity.adjust(connector, -1, 0);
        self.activity.delivery(connector, |d| {
            d.delivered += 1;
            d.last_delivered_ms = Some(now_ms());
        });
        Ok(())
    }

    /// Notes a failed attempt on the entry, so a restart resumes the count.
    pub fn record_failure(&self, connector: &str, entry: &Queued, attempts: u32, error: &str) -> Result<(), StoreError> {
        let value = OutboxValue { message_id: entry.message_id, attempts, last_error: Some(error.to_string()) };
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(keys::OUTBOX)?, keys::queue_key(connector, entry.seq), value.encode());
        let event = JournalEvent { attempt: Some(attempts), detail: Some(error.to_string()), ..JournalEvent::new(connector, "attempt") };
        self.journal(&mut batch, &entry.meta, event, None, None)?;
        self.db.write(batch)?;
        self.activity.failed(connector, error);
        Ok(())
    }

    /// Moves an entry from the outbox to the dead-letter queue, in one write.
    pub fn move_to_dead_letter(&self, connector: &str, entry: &Queued, attempts: u32, error: &str) -> Result<(), StoreError> {
        let record = DeadRecord { message_id: entry.message_id, attempts, error: error.to_string(), dead_at_ms: now_ms() };
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(keys::OUTBOX)?, keys::queue_key(connector, entry.seq));
        batch.put_cf(self.cf(keys::DEAD_LETTER)?, keys::queue_key(connector, entry.seq), serde_json::to_vec(&record).unwrap_or_default());
        let event = JournalEvent { attempt: Some(attempts), detail: Some(error.to_string()), ..JournalEvent::new(connector, "dead") };
        self.journal(&mut batch, &entry.meta, event, Some(State::Queued), Some(State::Dead))?;
        self.db.write(batch)?;
        self.activity.adjust(connector, -1, 1);
        self.activity.failed(connector, error);
        Ok(())
    }

    /// `connector`'s dead letters, oldest first, after `after` (an ID) when given.
    pub fn dead_letters(&self, connector: &str, after: Option<u64>, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self.dead_entries(connector, after, limit)?.into_iter().map(|(letter, _)| letter).collect())
    }

    /// One dead letter and its raw message.
    pub fn dead_letter(&self, connector: &str, id: u64) -> Result<Option<(DeadLetter, Bytes)>, StoreError> {
        let Some(value) = self.db.get_cf(self.cf(keys::DEAD_LETTER)?, keys::queue_key(connector, id))? else { return Ok(None) };
        let Ok(record) = serde_json::from_slice::<DeadRecord>(&value) else { return Ok(None) };
        let Some((meta, raw)) = self.message(record.message_id)? else { return Ok(None) };
        Ok(Some((dead_letter(id, record, meta), raw)))
    }

    fn dead_entries(&self, connector: &str, after: Option<u64>, limit: usize) -> Result<Vec<(DeadLetter, Bytes)>, StoreError> {
        let dead = self.cf(keys::DEAD_LETTER)?;
        let start = keys::queue_key(connector, after.map_or(0, |id| id.saturating_add(1)));
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(keys::queue_key(connector, u64::MAX));
        let mut letters = Vec::new();
        for item in self.db.iterator_cf_opt(dead, options, IteratorMode::From(&start, Direction::Forward)) {
            if letters.len() >= limit {
                break;
            }
            let (key, value) = item?;
            let Some((_, id)) = keys::parse_queue_key(&key) else { continue };
            let Ok(record) = serde_json::from_slice::<DeadRecord>(&value) else { continue };
            let (meta, raw) = self.message(record.message_id)?.unwrap_or_else(|| (missing_meta(), Bytes::new()));
            letters.push((dead_letter(id, record, meta), raw));
        }
        Ok(letters)
    }

    /// Moves dead letters back to the tail of the outbox, attempts reset, in
    /// their dead-letter order; `by` (who asked) is journalled. Returns how many moved.
    pub fn replay(&self, connector: &str, which: Selection, by: &str) -> Result<u64, StoreError> {
        let selected = self.select(connector, which)?;
        if selected.is_empty() {
            return Ok(0);
        }
        let dead = self.cf(keys::DEAD_LETTER)?;
        let mut batch = WriteBatch::default();
        for (id, record) in &selected {
            batch.delete_cf(dead, keys::queue_key(connector, *id));
            if let Some((meta, _)) = self.message(record.message_id)? {
                self.journal(
                    &mut batch,
                    &meta,
                    JournalEvent { by: Some(by.to_string()), ..JournalEvent::new(connector, "replayed") },
                    Some(State::Dead),
                    Some(State::Queued),
                )?;
            }
        }
        let ids: Vec<u64> = selected.iter().map(|(_, record)| record.message_id).collect();
        let connector: Arc<str> = Arc::from(connector);
        self.commits.with_committer(|committer| committer.append(&connector, &ids, batch))?;
        self.activity.adjust(&connector, 0, -(ids.len() as i64));
        Ok(ids.len() as u64)
    }

    /// Deletes dead letters for good (and their messages, once no queue
    /// holds them); `by` (who asked) is journalled. Returns how many.
    pub fn purge(&self, connector: &str, which: Selection, by: &str) -> Result<u64, StoreError> {
        let selected = self.select(connector, which)?;
        let dead = self.cf(keys::DEAD_LETTER)?;
        let mut batch = WriteBatch::default();
        for (id, record) in &selected {
            batch.delete_cf(dead, keys::queue_key(connector, *id));
            if let Some((meta, _)) = self.message(record.message_id)? {
                self.journal(&mut batch, &meta, JournalEvent { by: Some(by.to_string()), ..JournalEvent::new(connector, "purged") }, Some(State::Dead), None)?;
            }
        }
        let ids: Vec<u64> = selected.iter().map(|(_, record)| record.message_id).collect();
        self.write_releasing(batch, &ids)?;
        self.activity.adjust(connector, 0, -(ids.len() as i64));
        Ok(ids.len() as u64)
    }

    fn select(&self, connector: &str, which: Selection) -> Result<Vec<(u64, DeadRecord)>, StoreError> {
        let dead = self.cf(keys::DEAD_LETTER)?;
        match which {
            Selection::One(id) => {
                let value = self.db.get_cf(dead, keys::queue_key(connector, id))?;
                Ok(value.and_then(|v| serde_json::from_slice(&v).ok()).map(|record| (id, record)).into_iter().collect())
            }
            Selection::All => {
                let prefix = keys::queue_prefix(connector);
                let mut selected = Vec::new();
                for item in self.db.iterator_cf(dead, IteratorMode::From(&prefix, Direction::Forward)) {
                    let (key, value) = item?;
                    if !key.starts_with(&prefix) {
                        break;
                    }
                    let Some((_, id)) = keys::parse_queue_key(&key) else { continue };
                    if let Ok(record) = serde_json::from_slice(&value) {
                        selected.push((id, record));
                    }
                }
                Ok(selected)
            }
        }
    }

    /// Writes `batch` with one reference of each message released; a
    /// message whose last reference goes is deleted in the same write.
    fn write_releasing(&self, mut batch: WriteBatch, message_ids: &[u64]) -> Result<(), StoreError> {
        let meta = self.cf(keys::META)?;
        let messages = self.cf(keys::MESSAGES)?;
        let _guard = lock(&self.refs);
        let mut counts: HashMap<u64, Option<u32>> = HashMap::new();
        for &id in message_ids {
            let count = match counts.get(&id) {
                Some(count) => *count,
                None => self.db.get_cf(meta, keys::refs_key(id))?.and_then(|v| Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))),
            };
            // No count: written before counts existed; keep the message.
            let Some(count) = count else { continue };
            let left = count.saturating_sub(1);
            counts.insert(id, Some(left));
            if left == 0 {
                batch.delete_cf(meta, keys::refs_key(id));
                batch.delete_cf(messages, keys::message_key(id));
                // The journal keeps the body from here (it read the stored message until now).
                if let Some((MessageMeta { journal_id: Some(journal_id), .. }, raw)) = self.message(id)? {
                    self.journal.keep_body(&mut batch, journal_id, &raw, b"")?;
                }
            } else {
                batch.put_cf(meta, keys::refs_key(id), left.to_be_bytes());
            }
        }
        self.db.write(batch)?;
        Ok(())
    }

    fn message(&self, id: u64) -> Result<Option<(MessageMeta, Bytes)>, StoreError> {
        Ok(self.db.get_cf(self.cf(keys::MESSAGES)?, keys::message_key(id))?.as_deref().and_then(decode_message))
    }

    fn cf(&self, name: &'static str) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db.cf_handle(name).ok_or(StoreError::MissingColumnFamily(name))
    }
}

fn dead_letter(id: u64, record: DeadRecord, meta: MessageMeta) -> DeadLetter {
    DeadLetter { id, message_id: record.message_id, attempts: record.attempts, error: record.error, dead_at_ms: record.dead_at_ms, meta }
}

/// Shown for a dead letter whose message record is gone (never expected).
fn missing_meta() -> MessageMeta {
    MessageMeta {
        received_at_ms: 0,
        peer: String::new(),
        sending_application: String::new(),
        sending_facility: String::new(),
        message_type: String::new(),
        control_id: "(message missing)".into(),
        journal_id: None,
    }
}
