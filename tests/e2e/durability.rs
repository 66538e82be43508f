//! Every AA survives `kill -9`: under load from several connections the
//! server is killed, restarted, and every acknowledged control ID is found
//! in every connector's outbox exactly once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{RawClient, Sluice, ack_field, adt, metric_sum, wait_until};

const SENDERS: usize = 6;
/// AAs to collect before the kill; the senders keep going while it happens.
const ACKED_BEFORE_KILL: usize = 600;

#[test]
fn every_acknowledged_message_survives_kill_9() {
    let mut sluice = Sluice::start("");
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let acked_count = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let addr = sluice.addr;

    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let (acked, acked_count, killed) = (acked.clone(), acked_count.clone(), killed.clone());
            std::thread::spawn(move || {
                let mut client = RawClient::connect(addr);
                client.stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                for i in 0.. {
                    let id = format!("K{sender}-{i}");
                    // After the kill the write or the read fails: the message is unacknowledged.
                    if client.try_send_frame(&adt(&id)).is_err() {
                        break;
                    }
                    let Some(ack) = client.read_frame() else { break };
                    assert_eq!(ack_field(&ack, "MSA", 2), id, "ACKs arrive in order");
                    assert_eq!(ack_field(&ack, "MSA", 1), "AA");
                    acked.lock().unwrap().push(id);
                    acked_count.fetch_add(1, Ordering::SeqCst);
                    if killed.load(Ordering::SeqCst) {
                        // One more after the kill is impossible; stop anyway.
                        break;
                    }
                }
            })
        })
        .collect();

    while acked_count.load(Ordering::SeqCst) < ACKED_BEFORE_KILL {
        std::thread::yield_now();
    }
    sluice.kill9();
    killed.store(true, Ordering::SeqCst);
    for sender in senders {
        sender.join().expect("sender thread");
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= ACKED_BEFORE_KILL);

    sluice.restart();
    for connector in ["lab", "archive"] {
        let stored = sluice.outbox(connector);
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for id in &stored {
            *counts.entry(id).or_default() += 1;
        }
        for id in &acked {
            assert_eq!(counts.get(id.as_str()).copied().unwrap_or(0), 1, "{id} acknowledged; must be in `{connector}` exactly once");
        }
        assert!(counts.values().all(|&n| n == 1), "nothing is queued twice in `{connector}`");
    }

    // Sequence numbers continue after the restart: a new message queues last.
    let ack = sluice.client().send(&adt("AFTER-RESTART"));
    assert_eq!(ack_field(&ack, "MSA", 1), "AA");
    assert_eq!(sluice.outbox("lab").last().map(String::as_str), Some("AFTER-RESTART"));
}

/// SIGTERM drains and exits cleanly; what was acknowledged is there after a restart.
#[test]
fn graceful_shutdown_keeps_everything() {
    let mut sluice = Sluice::start("");
    let mut client = sluice.client();
    for i in 0..10 {
        assert_eq!(ack_field(&client.send(&adt(&format!("G{i}"))), "MSA", 1), "AA");
    }
    let status = sluice.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(sluice.log().contains("store flushed; stopped"), "{}", sluice.log());
    sluice.restart();
    assert_eq!(sluice.outbox("archive").len(), 10);
}

/// SIGTERM with frames half received on four connections: `/readyz` turns
/// 503 at once, a new connection is still served during
/// `pre_shutdown_delay`, each half-sent message is finished and gets its AA
/// after the signal, the process exits 0, and every acknowledged message
/// is there after a restart.
#[test]
fn graceful_shutdown_acks_the_messages_in_flight() {
    let mut sluice = Sluice::start("pre_shutdown_delay = \"4s\"\nshutdown_timeout = \"30s\"");
    let received = |sluice: &Sluice| metric_sum(&sluice.admin_get("/metrics", None).1, "sluice_received_bytes", &[]) as usize;
    let mut clients: Vec<RawClient> = (0..4).map(|_| sluice.client()).collect();
    let mut expected = Vec::new();
    let mut sent_bytes = 0;
    for (i, client) in clients.iter_mut().enumerate() {
        let first = adt(&format!("SD-FIRST-{i}"));
        assert_eq!(ack_field(&client.send(&first), "MSA", 1), "AA");
        sent_bytes += first.len() + 3;
        expected.push(format!("SD-FIRST-{i}"));
    }
    // Half of a message on each connection, read by the server (its byte
    // count shows it) before the signal.
    let halves: Vec<Vec<u8>> = (0..4).map(|i| [&[0x0B][..], &adt(&format!("SD-INFLIGHT-{i}"))].concat()).collect();
    for (client, whole) in clients.iter_mut().zip(&halves) {
        client.write_raw(&whole[..whole.len() / 2]);
        sent_bytes += whole.len() / 2;
    }
    wait_until(Duration::from_secs(10), "the half frames read", || received(&sluice) >= sent_bytes);

    sluice.signal("TERM");
    wait_until(Duration::from_secs(10), "/readyz to answer 503", || sluice.admin_get("/readyz", None).0 == 503);
    let mut late = sluice.client();
    assert_eq!(ack_field(&late.send(&adt("SD-LATE")), "MSA", 1), "AA", "still accepting during pre_shutdown_delay");
    for (i, (client, whole)) in clients.iter_mut().zip(&halves).enumerate() {
        client.write_raw(&whole[whole.len() / 2..]);
        client.write_raw(&[0x1C, 0x0D]);
        let ack = client.read_frame().expect("the in-flight message is answered before the exit");
        assert_eq!(ack_field(&ack, "MSA", 1), "AA");
        assert_eq!(ack_field(&ack, "MSA", 2), format!("SD-INFLIGHT-{i}"));
        expected.push(format!("SD-INFLIGHT-{i}"));
        assert!(client.read_frame().is_none(), "closed once its message is answered");
    }
    expected.push("SD-LATE".into());

    let status = sluice.terminate_wait();
    assert!(status.success(), "exit status {status:?}\n{}", sluice.log());
    let log = sluice.log();
    assert!(log.contains("still accepting for pre_shutdown_delay") && log.contains("store flushed; stopped"), "{log}");
    sluice.restart();
    let mut stored = sluice.outbox("archive");
    stored.sort();
    expected.sort();
    assert_eq!(stored, expected, "every acknowledged message survives the shutdown");
}
