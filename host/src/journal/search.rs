//! Finding messages in the journal. The most selective filter given drives
//! the scan over its index (control ID, patient, sender, type, ACK code,
//! connector state; else the records themselves), newest first within the
//! time range; the other filters are checked on each record found. A page
//! ends after `limit` results; its last ID is the cursor for the next one.

use std::collections::BTreeMap;

use rocksdb::{Direction, IteratorMode};
use serde::{Deserialize, Serialize};

use super::keys::{self, By};
use super::record::{JournalEvent, JournalRecord, State, decode_body};
use super::{Journal, ack_label, cf, is_positive, message_kind};
use crate::outbox::StoreError;

/// A search: every filter given must hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Query {
    pub control_id: Option<String>,
    pub patient: Option<String>,
    /// `ADT^A01`, or `ADT` for every trigger.
    #[serde(rename = "type")]
    pub message_type: Option<String>,
    /// `APP^FAC`, or `APP` for every facility.
    pub sender: Option<String>,
    pub ack: Option<String>,
    /// `queued`, `delivered` or `dead` on any connector.
    pub state: Option<String>,
    /// Received at or after (Unix ms).
    pub from_ms: Option<u64>,
    /// Received at or before (Unix ms).
    pub to_ms: Option<u64>,
    /// Older than this journal ID (the previous page's cursor).
    pub before: Option<u64>,
    pub limit: Option<usize>,
}

/// One message found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub id: u64,
    #[serde(flatten)]
    pub record: JournalRecord,
    /// Each connector's state now.
    pub states: BTreeMap<String, String>,
}

/// One message with everything the journal knows of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shown {
    pub id: u64,
    #[serde(flatten)]
    pub record: JournalRecord,
    pub states: BTreeMap<String, String>,
    pub events: Vec<JournalEvent>,
    /// The message as received, while `journal.retention` keeps it.
    pub raw: Option<String>,
    /// The ACK sent, while `journal.retention` keeps it.
    pub ack: Option<String>,
}

/// The most results one page returns.
pub const MAX_LIMIT: usize = 1000;

impl Journal {
    pub fn search(&self, query: &Query) -> Result<Vec<Summary>, StoreError> {
        let limit = query.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
        // Newest first, from the top of the time range (or the cursor) down.
        let mut upper = query.to_ms.map_or(u64::MAX, |to| keys::id_at(to.saturating_add(1)).saturating_sub(1));
        if let Some(before) = query.before {
            upper = upper.min(before.saturating_sub(1));
        }
        let lower = query.from_ms.map_or(0, keys::id_at);
        let state = match query.state.as_deref() {
            Some(text) => Some(State::parse(text).ok_or(StoreError::BadQuery(format!("`{text}` is not a state (queued, delivered, dead)")))?),
            None => None,
        };
        let driver = [
            query.control_id.as_deref().map(|v| (By::ControlId, v.to_string())),
            query.patient.as_deref().map(|v| (By::Patient, v.to_string())),
            query.sender.as_deref().map(|v| (By::Application, v.split('^').next().unwrap_or(v).to_string())),
            // A message code alone (`ADT`) has no index: the records are walked.
            query.message_type.as_deref().filter(|t| t.contains('^')).map(|v| (By::Type, message_kind(v))),
            query.ack.as_deref().map(ack_label).filter(|a| !is_positive(a)).map(|a| (By::Ack, a)),
            state.map(|s| (By::State, s.as_str().to_string())),
        ]
        .into_iter()
        .flatten()
        .next();

        let mut found = Vec::new();
        let mut last = None;
        let mut consider = |id: u64| -> Result<bool, StoreError> {
            if last == Some(id) {
                return Ok(true);
            }
            last = Some(id);
            let Some(record) = self.record(id)? else { return Ok(true) };
            if self.matches(query, state, id, &record)? {
                found.push(Summary { id, states: states(&record, &self.events(id)?), record });
            }
            Ok(found.len() < limit)
        };
        match driver {
            Some((by, value)) => {
                let index = cf(&self.db, keys::INDEX)?;
                let prefix = keys::index_prefix(by, &value);
                let start = keys::index_key(by, &value, upper, Some("\u{10FFFF}"));
                for item in self.db.iterator_cf(index, IteratorMode::From(&start, Direction::Reverse)) {
                    let (key, _) = item?;
                    let Some(id) = keys::index_id(&key).filter(|_| key.starts_with(&prefix)) else { break };
                    if id < lower {
                        break;
                    }
                    if id <= upper && !consider(id)? {
                        break;
                    }
                }
            }
            None => {
                let records = cf(&self.db, keys::RECORDS)?;
                let start = upper.to_be_bytes();
                for item in self.db.iterator_cf(records, IteratorMode::From(&start, Direction::Reverse)) {
                    let (key, _) = item?;
                    let Some(id) = keys::read_u64(&key).filter(|&id| id >= lower) else { break };
                    if !consider(id)? {
                        break;
                    }
                }
            }
        }
        Ok(found)
    }

    pub fn show(&self, id: u64) -> Result<Option<Shown>, StoreError> {
        let Some(record) = self.record(id)? else { return Ok(None) };
        let (raw, ack) = match self.body(id, &record)? {
            Some((raw, ack)) => (Some(String::from_utf8_lossy(&raw).into_owned()), Some(String::from_utf8_lossy(&ack).into_owned()).filter(|a| !a.is_empty())),
            None => (None, None),
        };
        let ack = ack.or_else(|| record.ack.clone().filter(|_| self.body_kept(id)));
        let events = self.events(id)?;
        Ok(Some(Shown { id, states: states(&record, &events), events, record, raw, ack }))
    }

    /// The message bytes of a journalled message, while retention keeps them.
    pub fn raw(&self, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(record) = self.record(id)? else { return Ok(None) };
        Ok(self.body(id, &record)?.map(|(raw, _)| raw))
    }

    /// The message and the ACK kept in the journal, or the stored message
    /// while an outbox still holds it; `None` past `journal.retention`.
    fn body(&self, id: u64, record: &JournalRecord) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
        if !self.body_kept(id) {
            return Ok(None);
        }
        let kept = self.db.get_cf(cf(&self.db, keys::BODIES)?, id.to_be_bytes())?;
        if let Some((raw, ack)) = kept.as_deref().and_then(decode_body) {
            return Ok(Some((raw.to_vec(), ack.to_vec())));
        }
        match record.message_id {
            Some(message_id) => Ok(crate::outbox::stored_message(&self.db, message_id)?.map(|raw| (raw.to_vec(), Vec::new()))),
            None => Ok(None),
        }
    }

    pub fn record(&self, id: u64) -> Result<Option<JournalRecord>, StoreError> {
        let value = self.db.get_cf(cf(&self.db, keys::RECORDS)?, id.to_be_bytes())?;
        Ok(value.and_then(|v| serde_json::from_slice(&v).ok()))
    }

    fn matches(&self, query: &Query, state: Option<State>, id: u64, record: &JournalRecord) -> Result<bool, StoreError> {
        let sender_ok = |s: &str| match s.split_once('^') {
            Some((app, fac)) => record.sending_application == app && record.sending_facility == fac,
            None => record.sending_application == s,
        };
        let type_ok = |t: &str| {
            let kind = message_kind(&record.message_type);
            if t.contains('^') { kind == message_kind(t) } else { kind.split('^').next() == Some(t) }
        };
        let plain = query.control_id.as_deref().is_none_or(|c| record.control_id == c)
            && query.patient.as_deref().is_none_or(|p| record.patient_id == p)
            && query.sender.as_deref().is_none_or(sender_ok)
            && query.message_type.as_deref().is_none_or(type_ok)
            && query.ack.as_deref().is_none_or(|a| record.ack_code == ack_label(a));
        if !plain {
            return Ok(false);
        }
        match state {
            None => Ok(true),
            Some(state) => {
                let prefix = keys::index_key(By::State, state.as_str(), id, None);
                let index = cf(&self.db, keys::INDEX)?;
                let first = self.db.iterator_cf(index, IteratorMode::From(&prefix, Direction::Forward)).next().transpose()?;
                Ok(first.is_some_and(|(key, _)| key.starts_with(&prefix)))
            }
        }
    }

    fn events(&self, id: u64) -> Result<Vec<JournalEvent>, StoreError> {
        let events = cf(&self.db, keys::EVENTS)?;
        let prefix = id.to_be_bytes();
        let mut out = Vec::new();
        for item in self.db.iterator_cf(events, IteratorMode::From(&prefix, Direction::Forward)) {
            let (key, value) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            if let Ok(event) = serde_json::from_slice(&value) {
                out.push(event);
            }
        }
        Ok(out)
    }
}

/// Each connector's state now: `queued` from the start, then its last event's meaning.
fn states(record: &JournalRecord, events: &[JournalEvent]) -> BTreeMap<String, String> {
    let mut states: BTreeMap<String, String> = record.connectors.iter().map(|c| (c.clone(), "queued".to_string())).collect();
    for event in events {
        let state = match event.event.as_str() {
            "queued" | "replayed" | "resent" | "attempt" => "queued",
            "delivered" => "delivered",
            "dead" => "dead",
            "purged" => "purged",
            _ => continue,
        };
        states.insert(event.connector.clone(), state.to_string());
    }
    states
}
