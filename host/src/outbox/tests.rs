//! The store under concurrent commits, reopened as a server restart would.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::*;

fn new_message(control_id: &str, connectors: &[Arc<str>]) -> NewMessage {
    NewMessage {
        meta: MessageMeta {
            received_at_ms: now_ms(),
            peer: "test".into(),
            sending_application: "APP".into(),
            sending_facility: "FAC".into(),
            message_type: "ADT^A01".into(),
            control_id: control_id.into(),
            journal_id: None,
        },
        raw: Bytes::from(format!("MSH|^~\\&|APP|FAC|||1||ADT^A01|{control_id}|P|2.5\r")),
        dedupe_key: dedupe_key(b"APP", b"FAC", control_id.as_bytes()),
        content_hash: xxhash_rust::xxh3::xxh3_128(control_id.as_bytes()),
        connectors: connectors.to_vec(),
        ack: Some(Bytes::from(format!("ACK {control_id}"))),
        journal: Some(crate::journal::JournalFacts { interface: "default".into(), ack_code: "AA".into(), ..Default::default() }),
    }
}

fn seqs(queues: &Queues, connector: &str) -> Vec<(u64, String)> {
    queues.outbox(connector, usize::MAX).unwrap().into_iter().map(|e| (e.seq, e.meta.control_id)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_get_unique_contiguous_sequences_that_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let connectors: Vec<Arc<str>> = vec![Arc::from("a"), Arc::from("b")];
    let store = Store::open(dir.path(), StoreOptions { dedupe_window: Duration::from_secs(60), ..StoreOptions::plain() }, &connectors).unwrap();
    let mut tasks = Vec::new();
    for task in 0..16 {
        let (handle, connectors) = (store.handle(), connectors.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let outcome = handle.commit(new_message(&format!("T{task}-{i}"), &connectors)).await.unwrap();
                assert!(matches!(outcome, Committed::Stored { .. }));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Within the dedupe window, a retransmission is answered from the store.
    let again = store.handle().commit(new_message("T3-7", &connectors)).await.unwrap();
    assert!(matches!(again, Committed::Duplicate { ack: Some(ref ack), .. } if ack == &Bytes::from("ACK T3-7")));
    store.close().unwrap();

    let store = Store::open(dir.path(), StoreOptions { dedupe_window: Duration::from_secs(60), ..StoreOptions::plain() }, &connectors).unwrap();
    let queues = store.queues();
    let a = seqs(&queues, "a");
    assert_eq!(a.len(), 800);
    assert_eq!(a.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), (1..=800).collect::<Vec<_>>(), "contiguous from 1");
    assert_eq!(seqs(&queues, "b"), a, "both connectors in the same order");
    // Each sender's messages keep their order.
    let t5: Vec<&String> = a.iter().map(|(_, id)| id).filter(|id| id.starts_with("T5-")).collect();
    assert_eq!(t5, (0..50).map(|i| format!("T5-{i}")).collect::<Vec<_>>().iter().collect::<Vec<_>>());
    drop(queues);
    store.close().unwrap();

    // Reopened (a restart): numbering continues, nothing is reused.
    let three: Vec<Arc<str>> = vec![Arc::from("a"), Arc::from("b"), Arc::from("c")];
    let store = Store::open(dir.path(), StoreOptions { dedupe_window: Duration::from_secs(60), ..StoreOptions::plain() }, &three).unwrap();
    store.handle().commit(new_message("AFTER", &connectors)).await.unwrap();
    let queues = store.queues();
    assert_eq!(seqs(&queues, "a").last().unwrap(), &(801, "AFTER".to_string()));
    assert_eq!(queues.depths()[2], QueueDepth { connector: "c".into(), outbox: 0, dead_letter: 0 });
}

#[tokio::test]
async fn a_closed_store_refuses_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::plain(), &[]).unwrap();
    let handle = store.handle();
    store.close().unwrap();
    assert!(matches!(handle.commit(new_message("X", &[])).await, Err(StoreError::Closed)));
}

fn control_ids(entries: &[Queued]) -> Vec<&str> {
    entries.iter().map(|e| e.meta.control_id.as_str()).collect()
}

#[tokio::test]
async fn a_message_leaves_the_store_once_every_connector_is_done_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let connectors: Vec<Arc<str>> = vec![Arc::from("a"), Arc::from("b")];
    let store = Store::open(dir.path(), StoreOptions::plain(), &connectors).unwrap();
    let queues = store.queues();
    let Committed::Stored { message_id } = store.handle().commit(new_message("M1", &connectors)).await.unwrap() else { panic!() };
    store.handle().commit(new_message("M2", &connectors)).await.unwrap();

    let a = queues.next_batch("a", 0, 10).unwrap();
    assert_eq!(control_ids(&a), ["M1", "M2"]);
    assert!(a[0].raw.starts_with(b"MSH|"));
    assert_eq!(queues.next_batch("a", a[0].seq, 10).unwrap().len(), 1, "reading after a sequence number skips it");

    queues.delivered("a", &a[0]).unwrap();
    let messages = store.db().cf_handle(keys::MESSAGES).unwrap();
    assert!(store.db().get_cf(messages, keys::message_key(message_id)).unwrap().is_some(), "b still needs it");
    let b = queues.next_batch("b", 0, 10).unwrap();
    queues.move_to_dead_letter("b", &b[0], 5, "HTTP 503").unwrap();
    assert!(store.db().get_cf(messages, keys::message_key(message_id)).unwrap().is_some(), "the dead letter still needs it");
    assert_eq!(
        queues.depths(),
        vec![QueueDepth { connector: "a".into(), outbox: 1, dead_letter: 0 }, QueueDepth { connector: "b".into(), outbox: 1, dead_letter: 1 },]
    );
    assert_eq!(queues.purge("b", Selection::One(b[0].seq), "test").unwrap(), 1);
    assert!(store.db().get_cf(messages, keys::message_key(message_id)).unwrap().is_none(), "no queue holds it any more");
}

#[tokio::test]
async fn dead_letters_replay_to_the_tail_of_the_outbox_and_counts_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let connectors: Vec<Arc<str>> = vec![Arc::from("lab")];
    let options = StoreOptions::plain();
    {
        let store = Store::open(dir.path(), options.clone(), &connectors).unwrap();
        let queues = store.queues();
        for id in ["M1", "M2", "M3"] {
            store.handle().commit(new_message(id, &connectors)).await.unwrap();
        }
        let entries = queues.next_batch("lab", 0, 10).unwrap();
        queues.record_failure("lab", &entries[0], 2, "connection refused").unwrap();
        queues.move_to_dead_letter("lab", &entries[1], 1, "HTTP 400: bad segment").unwrap();

        let dead = queues.dead_letters("lab", None, 10).unwrap();
        assert_eq!((dead.len(), dead[0].meta.control_id.as_str(), dead[0].error.as_str()), (1, "M2", "HTTP 400: bad segment"));

        let (letter, raw) = queues.dead_letter("lab", dead[0].id).unwrap().unwrap();
        assert_eq!((letter.attempts, raw.starts_with(b"MSH|")), (1, true));
        assert_eq!(queues.replay("lab", Selection::All, "test").unwrap(), 1);
        assert_eq!(queues.replay("lab", Selection::All, "test").unwrap(), 0, "nothing left to replay");
        store.close().unwrap();
    }
    let store = Store::open(dir.path(), options, &connectors).unwrap();
    let queues = store.queues();
    let outbox = queues.next_batch("lab", 0, 10).unwrap();
    assert_eq!(control_ids(&outbox), ["M1", "M3", "M2"], "the replayed message goes to the tail");
    assert_eq!((outbox[0].attempts, outbox[0].last_error.as_deref()), (2, Some("connection refused")));
    assert_eq!(outbox[2].attempts, 0, "a replay starts counting again");
    assert_eq!(queues.depths(), vec![QueueDepth { connector: "lab".into(), outbox: 3, dead_letter: 0 }]);
    store.handle().commit(new_message("M4", &connectors)).await.unwrap();
    assert_eq!(control_ids(&queues.next_batch("lab", outbox[2].seq, 10).unwrap()), ["M4"], "new messages come after the replayed one");
}

#[tokio::test]
async fn delivery_activity_counts_deliveries_and_keeps_the_last_error() {
    let dir = tempfile::tempdir().unwrap();
    let connectors: Vec<Arc<str>> = vec![Arc::from("lab"), Arc::from("archive")];
    let options = StoreOptions::plain();
    let store = Store::open(dir.path(), options, &connectors).unwrap();
    let queues = store.queues();
    for id in ["M1", "M2", "M3"] {
        store.handle().commit(new_message(id, &connectors)).await.unwrap();
    }
    let entries = queues.next_batch("lab", 0, 10).unwrap();
    queues.record_failure("lab", &entries[0], 1, "connection refused").unwrap();
    queues.move_to_dead_letter("lab", &entries[1], 1, "HTTP 400: bad segment").unwrap();
    queues.delivered("lab", &entries[0]).unwrap();
    queues.delivered("lab", &entries[2]).unwrap();
    let activity = queues.deliveries();
    let lab = activity.iter().find(|a| a.connector == "lab").unwrap();
    assert_eq!(lab.delivered, 2);
    assert_eq!(lab.last_error.as_deref(), Some("HTTP 400: bad segment"), "the last failure, kept after later successes");
    assert!(lab.last_delivered_ms.is_some() && lab.last_error_ms.is_some());
    let archive = activity.iter().find(|a| a.connector == "archive").unwrap();
    assert_eq!((archive.delivered, archive.last_error.as_deref()), (0, None), "listed before its first delivery");
}
