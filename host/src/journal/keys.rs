//! The journal's key layout. Journal IDs grow with time
//! (`received ms << 20 | n`), so every key that ends in one sorts by time:
//! newest first is a reverse scan, a time range is a key range, and expiry
//! is a compaction filter that reads the time from the key alone.

/// Column families.
pub const RECORDS: &str = "journal";
pub const BODIES: &str = "journal_bodies";
pub const EVENTS: &str = "journal_events";
pub const INDEX: &str = "journal_index";
pub const ALL: [&str; 4] = [RECORDS, BODIES, EVENTS, INDEX];

const ID_SHIFT: u32 = 20;

/// The smallest ID of a millisecond.
pub fn id_at(ms: u64) -> u64 {
    ms << ID_SHIFT
}

/// When the message with this ID was received.
pub fn time_of(id: u64) -> u64 {
    id >> ID_SHIFT
}

/// What an index entry is by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    ControlId,
    Patient,
    /// MSH-9's message code and trigger (`ADT^A01`).
    Type,
    /// MSH-3 (a search by `APP^FAC` checks MSH-4 on each record found).
    Application,
    Ack,
    /// A connector's state (`queued`, `delivered`, `dead`); the key ends in the connector.
    State,
}

impl By {
    fn tag(self) -> u8 {
        match self {
            By::ControlId => b'c',
            By::Patient => b'p',
            By::Type => b't',
            By::Application => b'a',
            By::Ack => b'k',
            By::State => b'q',
        }
    }
}

/// `[tag][value]\0`: every index key of one value starts with this. Values
/// never hold NUL (replaced), so the ID always follows the first NUL.
pub fn index_prefix(by: By, value: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(value.len() + 10);
    key.push(by.tag());
    key.extend(value.bytes().map(|b| if b == 0 { b' ' } else { b }));
    key.push(0);
    key
}

/// `[tag][value]\0[id]`, and for states `[connector]` after it.
pub fn index_key(by: By, value: &str, id: u64, connector: Option<&str>) -> Vec<u8> {
    let mut key = index_prefix(by, value);
    key.extend_from_slice(&id.to_be_bytes());
    if let Some(connector) = connector {
        key.extend_from_slice(connector.as_bytes());
    }
    key
}

/// The ID an index key points to.
pub fn index_id(key: &[u8]) -> Option<u64> {
    let at = memchr::memchr(0, key)? + 1;
    Some(u64::from_be_bytes(key.get(at..at + 8)?.try_into().ok()?))
}

/// `[id][event number]`: a message's events in order.
pub fn event_key(id: u64, n: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&id.to_be_bytes());
    key[8..].copy_from_slice(&n.to_be_bytes());
    key
}

pub(crate) use crate::outbox::read_u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_sort_by_time_within_a_value_and_give_back_their_id() {
        let (early, late) = (id_at(1_000), id_at(2_000) + 3);
        assert!(index_key(By::Patient, "42", early, None) < index_key(By::Patient, "42", late, None));
        assert!(index_key(By::Patient, "42", u64::MAX, None) < index_key(By::Patient, "420", 0, None), "a value's keys are contiguous");
        assert_eq!(index_id(&index_key(By::ControlId, "a\0b", late, None)), Some(late), "NUL in a value cannot confuse the ID");
        let state = index_key(By::State, "queued", late, Some("lab"));
        assert_eq!((index_id(&state), &state[state.len() - 3..]), (Some(late), &b"lab"[..]));
        assert!(event_key(late, 1) < event_key(late, 2) && event_key(late, u64::MAX) < event_key(late + 1, 0));
        assert_eq!(time_of(late), 2_000);
    }
}
