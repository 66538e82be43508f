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
        },
        raw: Bytes::from(format!("MSH|^~\\&|APP|FAC|||1||ADT^A01|{control_id}|P|2.5\r")),
        dedupe_key: dedupe_key(b"APP", b"FAC", control_id.as_bytes()),
        content_hash: xxhash_rust::xxh3::xxh3_128(control_id.as_bytes()),
        connectors: connectors.to_vec(),
        ack: Some(Bytes::from(format!("ACK {control_id}"))),
    }
}

fn seqs(reader: &StoreReader, connector: &str) -> Vec<(u64, String)> {
    reader.outbox(connector, usize::MAX).unwrap().into_iter().map(|e| (e.seq, e.meta.control_id)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_get_unique_contiguous_sequences_that_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let connectors: Vec<Arc<str>> = vec![Arc::from("a"), Arc::from("b")];
    let store = Store::open(dir.path(), StoreOptions { dedupe_window: Duration::from_secs(60) }, &connectors).unwrap();
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

    let reader = StoreReader::open(dir.path()).unwrap();
    let a = seqs(&reader, "a");
    assert_eq!(a.len(), 800);
    assert_eq!(a.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), (1..=800).collect::<Vec<_>>(), "contiguous from 1");
    assert_eq!(seqs(&reader, "b"), a, "both connectors in the same order");
    // Each sender's messages keep their order.
    let t5: Vec<&String> = a.iter().map(|(_, id)| id).filter(|id| id.starts_with("T5-")).collect();
    assert_eq!(t5, (0..50).map(|i| format!("T5-{i}")).collect::<Vec<_>>().iter().collect::<Vec<_>>());
    drop(reader);

    // Reopened (a restart): numbering continues, nothing is reused.
    let store = Store::open(dir.path(), StoreOptions { dedupe_window: Duration::from_secs(60) }, &connectors).unwrap();
    store.handle().commit(new_message("AFTER", &connectors)).await.unwrap();
    store.close().unwrap();
    let reader = StoreReader::open(dir.path()).unwrap();
    assert_eq!(seqs(&reader, "a").last().unwrap(), &(801, "AFTER".to_string()));
    assert_eq!(reader.depths(&["a".into(), "b".into(), "c".into()]).unwrap()[2], QueueDepth { connector: "c".into(), outbox: 0, dead_letter: 0 });
}

#[tokio::test]
async fn a_closed_store_refuses_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions { dedupe_window: Duration::ZERO }, &[]).unwrap();
    let handle = store.handle();
    store.close().unwrap();
    assert!(matches!(handle.commit(new_message("X", &[])).await, Err(StoreError::Closed)));
}
