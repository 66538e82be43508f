//! What an interface has seen, for `sluice interfaces list` and the admin
//! API: messages and bytes per sender by answer, the open connections with
//! their peers, the last message time. Prometheus gets the same counts
//! through `Metrics` (`sluice_interface_*`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::outbox::now_ms;

/// Distinct senders tracked per interface; later ones count as `other`, so a
/// peer inventing MSH-3 values cannot grow memory or metric series without bound.
pub const MAX_SENDERS: usize = 256;
/// Longest sender label kept.
const MAX_SENDER_LEN: usize = 64;

#[derive(Debug, Default)]
pub struct InterfaceStats {
    senders: Mutex<BTreeMap<String, SenderCounts>>,
    connections: Mutex<BTreeMap<u64, ConnectionStatus>>,
    next_connection: AtomicU64,
    last_message_ms: AtomicU64,
}

/// One sender's counts, by the answer it got (`AA`, `AR`, ..., `none`, `closed`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderCounts {
    pub messages: BTreeMap<String, u64>,
    pub bytes: BTreeMap<String, u64>,
    pub last_message_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionStatus {
    pub peer: SocketAddr,
    pub tls: bool,
    pub connected_at_ms: u64,
    pub messages: u64,
}

/// Removes its connection from the list when dropped.
pub struct ConnectionGuard<'a> {
    stats: &'a InterfaceStats,
    id: u64,
}

impl InterfaceStats {
    pub fn connected(&self, peer: SocketAddr, tls: bool) -> ConnectionGuard<'_> {
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let status = ConnectionStatus { peer, tls, connected_at_ms: now_ms(), messages: 0 };
        lock(&self.connections).insert(id, status);
        ConnectionGuard { stats: self, id }
    }

    /// Counts one message under its sender label; returns the label used.
    pub fn record(&self, sender: &str, answer: &str, bytes: usize) -> String {
        let now = now_ms();
        self.last_message_ms.store(now, Ordering::Relaxed);
        let mut senders = lock(&self.senders);
        let label = if senders.contains_key(sender) || senders.len() < MAX_SENDERS { sender } else { "other" };
        // Looked up before inserting: the message path allocates no keys once a sender is known.
        if !senders.contains_key(label) {
            senders.insert(label.to_string(), SenderCounts::default());
        }
        let counts = senders.get_mut(label).expect("inserted above");
        add(&mut counts.messages, answer, 1);
        add(&mut counts.bytes, answer, bytes as u64);
        counts.last_message_ms = now;
        label.to_string()
    }

    pub fn senders(&self) -> BTreeMap<String, SenderCounts> {
        lock(&self.senders).clone()
    }

    pub fn connections(&self) -> Vec<ConnectionStatus> {
        lock(&self.connections).values().cloned().collect()
    }

    pub fn open_connections(&self) -> usize {
        lock(&self.connections).len()
    }

    /// `None` before the first message.
    pub fn last_message_ms(&self) -> Option<u64> {
        Some(self.last_message_ms.load(Ordering::Relaxed)).filter(|&ms| ms > 0)
    }
}

impl ConnectionGuard<'_> {
    pub fn message(&self) {
        if let Some(status) = lock(&self.stats.connections).get_mut(&self.id) {
            status.messages += 1;
        }
    }
}

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        lock(&self.stats.connections).remove(&self.id);
    }
}

/// `APP^FAC` from MSH-3 and MSH-4 as text, bounded in length; `unknown` when
/// the MSH could not be read.
pub fn sender_label(application: &[u8], facility: &[u8]) -> String {
    if application.is_empty() && facility.is_empty() {
        return "unknown".into();
    }
    let mut label = format!("{}^{}", String::from_utf8_lossy(application), String::from_utf8_lossy(facility));
    if label.len() > MAX_SENDER_LEN {
        let mut end = MAX_SENDER_LEN;
        while !label.is_char_boundary(end) {
            end -= 1;
        }
        label.truncate(end);
    }
    label
}

fn add(counts: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    match counts.get_mut(key) {
        Some(count) => *count += n,
        None => {
            counts.insert(key.to_string(), n);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_beyond_the_cap_count_as_other() {
        let stats = InterfaceStats::default();
        for i in 0..MAX_SENDERS {
            stats.record(&format!("APP{i}^F"), "AA", 10);
        }
        assert_eq!(stats.record("APP0^F", "AR", 5), "APP0^F", "a known sender keeps its label");
        assert_eq!(stats.record("NEW^F", "AA", 7), "other");
        let senders = stats.senders();
        assert_eq!(senders.len(), MAX_SENDERS + 1);
        assert_eq!(senders["APP0^F"].messages["AR"], 1);
        assert_eq!(senders["other"].bytes["AA"], 7);
    }

    #[test]
    fn connections_are_listed_while_open() {
        let stats = InterfaceStats::default();
        let peer: SocketAddr = "10.0.0.7:50123".parse().unwrap();
        let guard = stats.connected(peer, false);
        guard.message();
        assert_eq!(stats.connections()[0].peer, peer);
        assert_eq!(stats.connections()[0].messages, 1);
        drop(guard);
        assert_eq!(stats.open_connections(), 0);
    }

    #[test]
    fn sender_labels_are_bounded() {
        assert_eq!(sender_label(b"EHR", b"HOSP"), "EHR^HOSP");
        assert_eq!(sender_label(b"", b""), "unknown");
        assert_eq!(sender_label("é".repeat(100).as_bytes(), b"").len(), 64);
    }
}
