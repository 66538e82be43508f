//! Reading the store from outside the server process (`sluice outbox ...`):
//! a RocksDB secondary instance, which works while `sluice serve` holds the
//! store and sees everything written up to the moment it catches up.

use std::path::Path;

use anyhow::Context;
use rocksdb::{ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options};
use serde::Serialize;

use super::keys;
use super::record::{MessageMeta, decode_message};
use super::store::cf_options;

pub struct StoreReader {
    db: DB,
    // Holds the secondary instance's own files until the reader is dropped.
    _scratch: tempfile::TempDir,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    pub connector: String,
    pub outbox: u64,
    pub dead_letter: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    pub seq: u64,
    pub message_id: u64,
    #[serde(flatten)]
    pub meta: MessageMeta,
}

impl StoreReader {
    pub fn open(dir: &Path) -> anyhow::Result<StoreReader> {
        if !dir.join("CURRENT").exists() {
            anyhow::bail!("no Sluice store in {} (run `sluice serve` first, or pass --data-dir)", dir.display());
        }
        let scratch = tempfile::Builder::new().prefix("sluice-reader").tempdir()?;
        let mut opts = Options::default();
        opts.set_max_open_files(-1);
        let descriptors = keys::ALL.iter().map(|&name| ColumnFamilyDescriptor::new(name, cf_options()));
        let db = DB::open_cf_descriptors_as_secondary(&opts, dir, scratch.path(), descriptors)
            .with_context(|| format!("failed to open the store in {} for reading", dir.display()))?;
        db.try_catch_up_with_primary().context("failed to catch up with the running server")?;
        Ok(StoreReader { db, _scratch: scratch })
    }

    /// Depth of every connector's outbox and dead-letter queue: those named in
    /// `configured` (even if empty) and any others found in the store.
    pub fn depths(&self, configured: &[String]) -> anyhow::Result<Vec<QueueDepth>> {
        let outbox = self.count_by_connector(keys::OUTBOX)?;
        let dead = self.count_by_connector(keys::DEAD_LETTER)?;
        let mut names: Vec<String> = configured.to_vec();
        for name in outbox.iter().chain(&dead).map(|(n, _)| n) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        let find = |list: &[(String, u64)], name: &str| list.iter().find(|(n, _)| n == name).map_or(0, |(_, c)| *c);
        Ok(names
            .into_iter()
            .map(|name| QueueDepth { outbox: find(&outbox, &name), dead_letter: find(&dead, &name), connector: name })
            .collect())
    }

    fn count_by_connector(&self, cf: &'static str) -> anyhow::Result<Vec<(String, u64)>> {
        let handle = self.db.cf_handle(cf).with_context(|| format!("column family {cf}"))?;
        let mut counts: Vec<(String, u64)> = Vec::new();
        for item in self.db.iterator_cf(handle, IteratorMode::Start) {
            let (key, _) = item?;
            let Some((name, _)) = keys::parse_queue_key(&key) else { continue };
            match counts.last_mut() {
                Some((last, count)) if last == name => *count += 1,
                _ => counts.push((name.to_string(), 1)),
            }
        }
        Ok(counts)
    }

    /// A connector's outbox in delivery order, from the oldest entry.
    pub fn outbox(&self, connector: &str, limit: usize) -> anyhow::Result<Vec<OutboxEntry>> {
        let outbox = self.db.cf_handle(keys::OUTBOX).context("outbox column family")?;
        let messages = self.db.cf_handle(keys::MESSAGES).context("messages column family")?;
        let prefix = keys::queue_prefix(connector);
        let mut entries = Vec::new();
        for item in self.db.iterator_cf(outbox, IteratorMode::From(&prefix, Direction::Forward)) {
            let (key, value) = item?;
            if !key.starts_with(&prefix) || entries.len() >= limit {
                break;
            }
            let Some((_, seq)) = keys::parse_queue_key(&key) else { continue };
            let message_id = keys::read_u64(&value).context("corrupt outbox entry")?;
            let record = self.db.get_cf(messages, keys::message_key(message_id))?;
            let (meta, _) = record
                .as_deref()
                .and_then(decode_message)
                .with_context(|| format!("outbox entry {seq} of `{connector}` points to missing message {message_id}"))?;
            entries.push(OutboxEntry { seq, message_id, meta });
        }
        Ok(entries)
    }
}
