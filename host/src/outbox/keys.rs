//! Key and value layouts in the store. Big-endian integers so that RocksDB's
//! byte order is numeric order: each connector's outbox iterates in arrival order.

/// Column families.
pub const MESSAGES: &str = "messages";
pub const OUTBOX: &str = "outbox";
pub const DEAD_LETTER: &str = "dead_letter";
pub const DEDUPE: &str = "dedupe";
pub const META: &str = "meta";
/// Messages interfaces refused, in their wire form (outbox::rejected).
pub const REJECTED: &str = "rejected";
pub const ALL: [&str; 6] = [MESSAGES, OUTBOX, DEAD_LETTER, DEDUPE, META, REJECTED];

/// Meta key of the next message ID.
pub const NEXT_MESSAGE_ID: &[u8] = b"next_message_id";

pub fn message_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// `<connector>\0<seq>`: connector names never contain NUL (config checks).
pub fn queue_key(connector: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(connector.len() + 9);
    key.extend_from_slice(connector.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The prefix all of a connector's queue keys share.
pub fn queue_prefix(connector: &str) -> Vec<u8> {
    let mut key = connector.as_bytes().to_vec();
    key.push(0);
    key
}

/// Splits a queue key into connector name and sequence number.
pub fn parse_queue_key(key: &[u8]) -> Option<(&str, u64)> {
    let split = key.len().checked_sub(9)?;
    if key[split] != 0 {
        return None;
    }
    let name = std::str::from_utf8(&key[..split]).ok()?;
    let seq = u64::from_be_bytes(key[split + 1..].try_into().ok()?);
    Some((name, seq))
}

/// Meta key of a connector's last assigned sequence number.
pub fn last_seq_key(connector: &str) -> Vec<u8> {
    [b"last_seq\0", connector.as_bytes()].concat()
}

/// Meta key of a message's reference count: how many outbox and
/// dead-letter entries still point to it. The message is deleted with the last.
pub fn refs_key(id: u64) -> Vec<u8> {
    [b"refs\0".as_slice(), &id.to_be_bytes()].concat()
}

/// Dedupe key: sending application, facility and control ID, each
/// length-prefixed so that no two different triples share a key.
pub fn dedupe_key(application: &[u8], facility: &[u8], control_id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(application.len() + facility.len() + control_id.len() + 12);
    for part in [application, facility, control_id] {
        key.extend_from_slice(&(part.len() as u32).to_be_bytes());
        key.extend_from_slice(part);
    }
    key
}

pub fn read_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_sort_by_sequence_and_round_trip() {
        assert!(queue_key("lab", 2) < queue_key("lab", 256));
        assert!(queue_key("lab", u64::MAX) < queue_key("lab2", 0));
        assert_eq!(parse_queue_key(&queue_key("lab", 77)), Some(("lab", 77)));
        assert!(queue_key("lab", 1).starts_with(&queue_prefix("lab")));
        assert!(!queue_key("lab2", 1).starts_with(&queue_prefix("lab")));
    }

    #[test]
    fn dedupe_keys_are_unambiguous() {
        assert_ne!(dedupe_key(b"AB", b"C", b"1"), dedupe_key(b"A", b"BC", b"1"));
    }
}
