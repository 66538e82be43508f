//! The journal against a real store: what a commit and a delivery write,
//! and how searches combine filters, ranges and pages.

use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::outbox::{MessageMeta, NewMessage, Store, StoreOptions, dedupe_key};

fn message(control_id: &str, kind: &str, patient: &str, ack: &str, at_ms: u64) -> NewMessage {
    NewMessage {
        meta: MessageMeta {
            received_at_ms: at_ms,
            peer: "127.0.0.1:9".into(),
            sending_application: "EHR".into(),
            sending_facility: "HOSP".into(),
            message_type: format!("{kind}^{}", kind.replace('^', "_")),
            control_id: control_id.into(),
            journal_id: None,
        },
        raw: Bytes::from(format!("MSH|^~\\&|EHR|HOSP|||1||{kind}|{control_id}|P|2.5\rPID|1||{patient}\r")),
        dedupe_key: dedupe_key(b"EHR", b"HOSP", control_id.as_bytes()),
        content_hash: xxhash_rust::xxh3::xxh3_128(control_id.as_bytes()),
        connectors: vec![Arc::from("lab")],
        ack: Some(Bytes::from(format!("MSH|ACK|{control_id}"))),
        journal: Some(JournalFacts { interface: "default".into(), patient_id: patient.into(), ack_code: ack.into(), reason: None }),
    }
}

fn ids(found: &[Summary]) -> Vec<&str> {
    found.iter().map(|s| s.record.control_id.as_str()).collect()
}

#[tokio::test]
async fn searches_combine_filters_ranges_and_pages_and_follow_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::plain(), &[Arc::from("lab")]).unwrap();
    let now = crate::outbox::now_ms();
    for (i, (id, kind, patient, ack)) in
        [("A1", "ADT^A01", "P1", "AA"), ("O1", "ORU^R01", "P1", "AA"), ("A2", "ADT^A08", "P2", "none"), ("A3", "ADT^A01", "P2", "AA")].into_iter().enumerate()
    {
        store.handle().commit(message(id, kind, patient, ack, now - 4000 + i as u64 * 1000)).await.unwrap();
    }
    let journal = store.journal();
    let search = |query: Query| journal.search(&query).unwrap();
    assert_eq!(ids(&search(Query::default())), ["A3", "A2", "O1", "A1"], "newest first");
    assert_eq!(ids(&search(Query { message_type: Some("ADT".into()), ..Query::default() })), ["A3", "A2", "A1"], "a message code alone");
    assert_eq!(ids(&search(Query { message_type: Some("ADT^A01".into()), patient: Some("P2".into()), ..Query::default() })), ["A3"]);
    assert_eq!(ids(&search(Query { ack: Some("NONE".into()), ..Query::default() })), ["A2"], "`none` in any case");
    assert_eq!(ids(&search(Query { ack: Some("aa".into()), ..Query::default() })), ["A3", "O1", "A1"], "positive ACKs, found without an index");
    assert_eq!(ids(&search(Query { from_ms: Some(now - 3000), to_ms: Some(now - 2000), ..Query::default() })), ["A2", "O1"], "a time range");
    let first = search(Query { patient: Some("P1".into()), limit: Some(1), ..Query::default() });
    assert_eq!(ids(&first), ["O1"]);
    assert_eq!(ids(&search(Query { patient: Some("P1".into()), before: Some(first[0].id), ..Query::default() })), ["A1"], "the next page");
    assert!(journal.search(&Query { state: Some("lost".into()), ..Query::default() }).is_err(), "an unknown state is refused");

    // Delivering A1 moves its state; the event is in its history.
    let queued = store.queues().next_batch("lab", 0, 1).unwrap().remove(0);
    assert_eq!(queued.meta.control_id, "A1");
    store.queues().delivered("lab", &queued).unwrap();
    assert_eq!(ids(&search(Query { state: Some("delivered".into()), ..Query::default() })), ["A1"]);
    assert_eq!(ids(&search(Query { state: Some("queued".into()), message_type: Some("ADT^A01".into()), ..Query::default() })), ["A3"]);
    let a1 = search(Query { control_id: Some("A1".into()), ..Query::default() }).remove(0);
    let shown = journal.show(a1.id).unwrap().unwrap();
    let events: Vec<&str> = shown.events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(events, ["delivered"], "queued is the start, not an event");
    assert_eq!(shown.states["lab"], "delivered");
    assert_eq!(shown.ack.as_deref(), Some("MSH|ACK|A1"));
    assert!(shown.raw.unwrap().contains("PID|1||P1"));
}
