//! Opening the RocksDB store, recovering counters, and the handle the
//! pipeline commits through.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rocksdb::{BlockBasedOptions, ColumnFamilyDescriptor, DB, DBCompressionType, Options};
use tokio::sync::{Notify, oneshot};

use super::committer::{CommitRequest, Committer, NewMessage};
use super::queue::{Activity, Queues};
use super::record::DedupeEntry;
use super::rejected::{Rejected, rejected_options};
use super::{Committed, DiskSpace, StoreError, keys};
use crate::journal::Journal;

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long a message is remembered for duplicate suppression; zero turns it off.
    pub dedupe_window: Duration,
    /// How long refused messages are kept; zero keeps them.
    pub rejected_retention: Duration,
    pub journal: crate::journal::JournalConfig,
    /// Free bytes the data directory's filesystem must keep; below it new messages get AE (0: no check).
    pub min_free_disk: u64,
}

impl StoreOptions {
    /// No duplicate window, nothing expires, the journal on (for tests).
    pub fn plain() -> StoreOptions {
        StoreOptions { dedupe_window: Duration::ZERO, rejected_retention: Duration::ZERO, journal: crate::journal::JournalConfig::default(), min_free_disk: 0 }
    }
}

/// The open store: owns the database and the group committer.
pub struct Store {
    db: Arc<DB>,
    handle: CommitHandle,
    queues: Queues,
    rejected: Rejected,
    journal: Journal,
    disk: Arc<DiskSpace>,
}

/// A cheap, cloneable handle to commit messages through.
#[derive(Clone)]
pub struct CommitHandle {
    group: Arc<GroupCommit>,
}

/// Leader/follower group commit (as RocksDB's own write path does it): a
/// connection queues its message; whoever finds the committer free becomes
/// the leader and writes everything queued in one synced batch, on its own
/// thread. Alone, a message is written with no thread hand-off at all; under
/// load, everything queued during one fsync shares the next one.
struct GroupCommit {
    pending: Mutex<Vec<CommitRequest>>,
    /// `None` once the store is closed.
    committer: Mutex<Option<Committer>>,
    leader_free: Notify,
}

impl CommitHandle {
    fn new(committer: Option<Committer>) -> CommitHandle {
        CommitHandle { group: Arc::new(GroupCommit { pending: Mutex::new(Vec::new()), committer: Mutex::new(committer), leader_free: Notify::new() }) }
    }

    /// Runs `f` on the committer, between group commits (a dead-letter
    /// replay takes sequence numbers from it). Blocks while a batch is written.
    pub(super) fn with_committer<R>(&self, f: impl FnOnce(&mut Committer) -> Result<R, StoreError>) -> Result<R, StoreError> {
        match lock(&self.group.committer).as_mut() {
            Some(committer) => f(committer),
            None => Err(StoreError::Closed),
        }
    }

    /// A handle whose store is gone: every commit fails (for tests of the error path).
    #[cfg(test)]
    pub(crate) fn disconnected() -> CommitHandle {
        CommitHandle::new(None)
    }

    /// Makes a message durable (or finds it is a duplicate). Resolves after
    /// the batch holding it is fsync'd.
    pub async fn commit(&self, message: NewMessage) -> Result<Committed, StoreError> {
        let (reply, mut answer) = oneshot::channel();
        lock(&self.group.pending).push(CommitRequest { message, reply });
        loop {
            // Registered before trying to lead, so a leader finishing in
            // between cannot be missed.
            let leader_free = self.group.leader_free.notified();
            tokio::pin!(leader_free);
            leader_free.as_mut().enable();
            if let Some(mut committer) = try_lock(&self.group.committer) {
                let mut batch = std::mem::take(&mut *lock(&self.group.pending));
                match committer.as_mut() {
                    // The leader writes on its own runtime thread: only one
                    // leader exists at a time, so at most one thread waits
                    // on the fsync while the others keep serving (the server
                    // runs at least two). A hand-off to another thread would
                    // cost more than the wait (measured: BENCHMARKS.md).
                    Some(committer) if !batch.is_empty() => committer.commit(&mut batch),
                    Some(_) => {}
                    None => refuse_closed(&mut batch),
                }
                drop(committer);
                self.group.leader_free.notify_waiters();
            }
            tokio::select! {
                biased;
                result = &mut answer => return result.map_err(|_| StoreError::Closed)?,
                _ = &mut leader_free => {}
            }
        }
    }
}

/// Answers requests that can no longer be written.
fn refuse_closed(requests: &mut Vec<CommitRequest>) {
    for request in requests.drain(..) {
        let _ = request.reply.send(Err(StoreError::Closed));
    }
}

/// The guard if the mutex is free (poisoned or not), `None` if it is held.
fn try_lock<T>(mutex: &Mutex<T>) -> Option<std::sync::MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves the data consistent (requests
    // are only moved out), so a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Column family options: no compression (none is built in, keeping the cold
/// build short; HL7 text is small and the volume is bounded by delivery).
fn cf_options() -> Options {
    let mut opts = Options::default();
    opts.set_compression_type(DBCompressionType::None);
    opts
}

/// The dedupe column family: a bloom filter, since almost every lookup is a
/// miss (a new control ID) that it answers without reading table blocks, and
/// expiry of entries older than the window at compaction.
fn dedupe_options(window: Duration) -> Options {
    let mut opts = cf_options();
    let mut table = BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    opts.set_block_based_table_factory(&table);
    if !window.is_zero() {
        let window_ms = window.as_millis() as u64;
        opts.set_compaction_filter("sluice-dedupe-expiry", move |_level: u32, _key: &[u8], value: &[u8]| match DedupeEntry::received_at(value) {
            Some(at) if now_ms().saturating_sub(at) <= window_ms => rocksdb::compaction_filter::Decision::Keep,
            _ => rocksdb::compaction_filter::Decision::Remove,
        });
    }
    opts
}

impl Store {
    pub fn open(dir: &Path, options: StoreOptions, connectors: &[Arc<str>]) -> anyhow::Result<Store> {
        std::fs::create_dir_all(dir).with_context(|| format!("failed to create data directory {}", dir.display()))?;
        let mut db_opts = cf_options();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_keep_log_file_num(5);

        let mut descriptors: Vec<ColumnFamilyDescriptor> = keys::ALL
            .iter()
            .map(|&name| {
                let opts = match name {
                    keys::DEDUPE => dedupe_options(options.dedupe_window),
                    keys::REJECTED => rejected_options(cf_options(), options.rejected_retention),
                    _ => cf_options(),
                };
                ColumnFamilyDescriptor::new(name, opts)
            })
            .collect();
        descriptors.extend(crate::journal::descriptors(&options.journal, cf_options));
        let db = DB::open_cf_descriptors(&db_opts, dir, descriptors)
            .with_context(|| format!("failed to open the store in {} (is another `sluice serve` using it?)", dir.display()))?;
        let db = Arc::new(db);

        let meta = db.cf_handle(keys::META).context("meta column family")?;
        let next_message_id = db.get_cf(meta, keys::NEXT_MESSAGE_ID)?.as_deref().and_then(keys::read_u64).unwrap_or(1);
        let mut last_seq = HashMap::new();
        for connector in connectors {
            let seq = db.get_cf(meta, keys::last_seq_key(connector))?.as_deref().and_then(keys::read_u64).unwrap_or(0);
            last_seq.insert(connector.clone(), seq);
        }

        let activity = Arc::new(Activity::count(&db, connectors)?);
        let journal = Journal::open(db.clone(), options.journal.clone())?;
        let disk = Arc::new(DiskSpace::new(dir, options.min_free_disk));
        let committer = Committer {
            db: db.clone(),
            dedupe_window: options.dedupe_window,
            next_message_id,
            last_seq,
            activity: activity.clone(),
            journal: journal.clone(),
            disk: disk.clone(),
        };
        let handle = CommitHandle::new(Some(committer));
        let queues = Queues::new(db.clone(), handle.clone(), activity, journal.clone());
        let rejected = Rejected::open(db.clone(), journal.clone(), disk.clone())?;
        Ok(Store { db, handle, queues, rejected, journal, disk })
    }

    /// Free space on the data directory, as the writes see it (for `/readyz`).
    pub fn disk(&self) -> Arc<DiskSpace> {
        self.disk.clone()
    }

    pub fn handle(&self) -> CommitHandle {
        self.handle.clone()
    }

    /// The outboxes and dead-letter queues, for delivery and the admin API.
    pub fn queues(&self) -> Queues {
        self.queues.clone()
    }

    /// Every message received, and what became of it.
    pub fn journal(&self) -> Journal {
        self.journal.clone()
    }

    /// The messages interfaces refused.
    pub fn rejected(&self) -> Rejected {
        self.rejected.clone()
    }

    pub fn db(&self) -> &DB {
        &self.db
    }

    /// Waits for the batch being written, refuses further commits, flushes.
    pub fn close(self) -> anyhow::Result<()> {
        // Taking the committer waits for a batch being written.
        drop(lock(&self.handle.group.committer).take());
        refuse_closed(&mut lock(&self.handle.group.pending));
        self.db.flush_wal(true)?;
        Ok(())
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
