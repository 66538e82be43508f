//! The pipeline's answers, with a real store in a temporary directory.

use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::outbox::{Store, StoreOptions};

const PEER: &str = "127.0.0.1:4000";

fn message(control_id: &str) -> Bytes {
    Bytes::from(format!("MSH|^~\\&|EHR|HOSP|LIS|LAB|20260101||ADT^A01|{control_id}|P|2.5.1\rPID|1||42\r"))
}

fn field(ack: &Bytes, path: &str) -> String {
    let ack = Message::parse(ack.clone(), CharsetPolicy::default()).unwrap();
    ack.text_at(&path.parse().unwrap()).unwrap_or_default()
}

fn pipeline(store: CommitHandle) -> (Pipeline, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    (Pipeline::new(CharsetPolicy::default(), store, metrics.clone()), metrics)
}

/// The default interface feeding both connectors.
fn rules() -> InterfaceRules {
    InterfaceRules::unconditional("default", &[Arc::from("lab"), Arc::from("archive")])
}

#[tokio::test]
async fn accepted_message_is_stored_then_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions { dedupe_window: std::time::Duration::from_secs(60), ..StoreOptions::plain() },
        &[Arc::from("lab"), Arc::from("archive")],
    )
    .unwrap();
    let (pipeline, metrics) = pipeline(store.handle());
    let reply = pipeline.process(message("P1"), PEER.parse().unwrap(), &rules()).await;
    let ack = reply.ack.expect("an ACK");
    assert_eq!(field(&ack, "MSA-1"), "AA");
    assert_eq!(field(&ack, "MSA-2"), "P1");
    assert_eq!(metrics.ack_count(crate::ack::AckCode::AA), 1);

    let again = pipeline.process(message("P1"), PEER.parse().unwrap(), &rules()).await;
    assert_eq!(again.ack, Some(ack), "a retransmission gets the same ACK");
    assert_eq!(metrics.duplicates.get(), 1);
    drop(pipeline);
    store.close().unwrap();

    let store =
        Store::open(dir.path(), StoreOptions { dedupe_window: std::time::Duration::from_secs(60), ..StoreOptions::plain() }, &[Arc::from("lab")]).unwrap();
    let queued = store.queues().outbox("lab", 10).unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].meta.control_id, "P1");
    assert_eq!(queued[0].meta.peer, PEER);
}

/// A storage failure is transient: AE with the reason, so the sender retries.
#[tokio::test]
async fn storage_failure_answers_ae() {
    let (pipeline, metrics) = pipeline(CommitHandle::disconnected());
    let ack = pipeline.process(message("S1"), PEER.parse().unwrap(), &rules()).await.ack.unwrap();
    assert_eq!(field(&ack, "MSA-1"), "AE");
    assert_eq!(field(&ack, "MSA-2"), "S1");
    assert!(field(&ack, "MSA-3").contains("not stored, please retry"), "{ack:?}");
    assert_eq!(field(&ack, "ERR-3.1"), "207");
    assert_eq!(metrics.ack_count(crate::ack::AckCode::AE), 1);
}

/// In enhanced mode a storage failure is CE.
#[tokio::test]
async fn storage_failure_in_enhanced_mode_is_ce() {
    let (pipeline, _) = pipeline(CommitHandle::disconnected());
    let raw = Bytes::from_static(b"MSH|^~\\&|EHR|HOSP|LIS|LAB|20260101||ADT^A01|S2|P|2.5|||AL|NE\r");
    let ack = pipeline.process(raw, PEER.parse().unwrap(), &rules()).await.ack.unwrap();
    assert_eq!(field(&ack, "MSA-1"), "CE");
}

/// An unknown MSH-18 is rejected in the sender's own dialect, naming MSH-18.
#[tokio::test]
async fn unsupported_charset_is_rejected_with_its_location() {
    let (pipeline, _) = pipeline(CommitHandle::disconnected());
    let raw = Bytes::from_static(b"MSH*^~\\&*EHR*HOSP*LIS*LAB*20260101**ADT^A01*C1*P*2.5******ISO IR87\r");
    let ack = pipeline.process(raw, PEER.parse().unwrap(), &rules()).await.ack.unwrap();
    assert!(ack.starts_with(b"MSH*"), "{ack:?}");
    // The ACK echoes MSH-18 as sent; read it as ASCII.
    let a = Message::parse(ack, CharsetPolicy { default: crate::hl7::Charset::Ascii, force: true }).unwrap();
    assert_eq!(a.text_at(&"MSA-1".parse().unwrap()).unwrap(), "AR");
    assert_eq!(a.text_at(&"MSA-2".parse().unwrap()).unwrap(), "C1");
    assert_eq!(a.text_at(&"ERR-2".parse().unwrap()).unwrap(), "MSH^1^18^1");
    assert_eq!(a.text_at(&"ERR-3.1".parse().unwrap()).unwrap(), "103");
}

/// A sender policy of `close` on errors: no ACK, the connection is to be
/// closed, and the message is kept in the rejected store with its reason.
#[tokio::test]
async fn a_close_policy_answers_nothing_and_keeps_the_message() {
    use crate::config::{AckPolicyConfig, OnNack, SenderRule};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::plain(), &[]).unwrap();
    let (pipeline, metrics) = pipeline(CommitHandle::disconnected());
    let pipeline = pipeline.with_rejected(store.rejected());
    let mut interface = rules();
    interface.ack = crate::interface::AckPolicy::from_config(&AckPolicyConfig {
        senders: vec![SenderRule { sending_application: "eh?".into(), on_error: Some(OnNack::Close), ..SenderRule::default() }],
        ..AckPolicyConfig::default()
    });
    let reply = pipeline.process(message("X1"), PEER.parse().unwrap(), &interface).await;
    assert!(reply.close && reply.ack.is_none(), "{reply:?}");
    assert_eq!((reply.answer, reply.sender.as_str()), ("closed", "EHR^HOSP"));
    assert_eq!((metrics.nacks_closed.get(), metrics.ack_count(crate::ack::AckCode::AE)), (1, 0));
    let kept = store.rejected().list(None, None, 10).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].record.control_id.as_str(), kept[0].record.answer.as_str()), ("X1", "closed"));
    assert!(kept[0].record.reason.contains("not stored"), "{:?}", kept[0].record);
    let (_, raw) = store.rejected().get(kept[0].id).unwrap().unwrap();
    assert_eq!(raw, message("X1"), "kept in its wire form");

    // Another sender gets the interface's default: an AE.
    let other = Bytes::from_static(b"MSH|^~\\&|LIS|LAB|EHR|HOSP|20260101||ORU^R01|X2|P|2.5.1\r");
    let reply = pipeline.process(other, PEER.parse().unwrap(), &interface).await;
    assert_eq!((reply.close, reply.answer), (false, "AE"));
}
