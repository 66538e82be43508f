//! Crash drills: load from several connections while two connectors deliver
//! to local MLLP receivers, a `kill -9` at a random moment, a restart, and
//! again. Every control ID that got an AA is delivered to each receiver at
//! least once, in the order it was sent per connection; redeliveries after a
//! crash (at-least-once) are counted and printed. 3 rounds here;
//! `CRASH_DRILL_ROUNDS=20 cargo test crash_drill -- --nocapture` is the long form.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{MllpReceiver, RawClient, Sluice, ack_field, adt, wait_until};

const SENDERS: usize = 4;
const WAIT: Duration = Duration::from_secs(120);

fn rounds() -> usize {
    std::env::var("CRASH_DRILL_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(3)
}

fn config(lab: &MllpReceiver, archive: &MllpReceiver) -> String {
    let retry = "retry = { initial_backoff = \"20ms\", multiplier = 2.0, max_backoff = \"200ms\", max_attempts = 3, jitter = 0.0 }\ndead_letter = false";
    format!(
        "[connectors.lab]\nplugin = \"mllp\"\nconfig = {{ destination = \"{}\" }}\n{retry}\n\
         [connectors.archive]\nplugin = \"mllp\"\nconfig = {{ destination = \"{}\" }}\n{retry}\n\
         [plugins.mllp]\nallow = {{ mllp = [\"{}\", \"{}\"] }}\n",
        lab.addr, archive.addr, lab.addr, archive.addr
    )
}

/// One round of load: each sender sends until the kill cuts its connection; returns what got AA, per sender, in order.
fn load_until_killed(sluice: &mut Sluice, round: usize) -> Vec<Vec<String>> {
    let acked: Arc<Mutex<Vec<Vec<String>>>> = Arc::new(Mutex::new(vec![Vec::new(); SENDERS]));
    let killed = Arc::new(AtomicBool::new(false));
    let addr = sluice.addr;
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let (acked, killed) = (acked.clone(), killed.clone());
            std::thread::spawn(move || {
                let mut client = RawClient::connect(addr);
                for i in 0.. {
                    let id = format!("R{round}S{sender}-{i}");
                    if client.try_send_frame(&adt(&id)).is_err() {
                        return;
                    }
                    let Ok(Some(ack)) = client.try_read_frame() else { return };
                    assert_eq!(ack_field(&ack, "MSA", 2), id, "ACKs arrive in order");
                    assert_eq!(ack_field(&ack, "MSA", 1), "AA");
                    acked.lock().unwrap()[sender].push(id);
                    if killed.load(Ordering::SeqCst) {
                        return;
                    }
                }
            })
        })
        .collect();
    // The random moment: somewhere between 0.2 and 1.5 s into the load.
    std::thread::sleep(Duration::from_millis(fastrand::u64(200..1500)));
    sluice.kill9();
    killed.store(true, Ordering::SeqCst);
    for sender in senders {
        sender.join().expect("sender");
    }
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_message() {
    let (lab, archive) = (MllpReceiver::start(), MllpReceiver::start());
    let mut sluice = Sluice::prepare(&config(&lab, &archive));
    sluice.launch();
    let mut acked: Vec<Vec<String>> = Vec::new();
    let rounds = rounds();
    for round in 0..rounds {
        let got = load_until_killed(&mut sluice, round);
        assert!(got.iter().any(|ids| !ids.is_empty()), "round {round}: some messages got AA before the kill");
        acked.extend(got);
        sluice.restart();
    }
    let all: HashSet<&String> = acked.iter().flatten().collect();
    let mut report = Vec::new();
    for (name, receiver) in [("lab", &lab), ("archive", &archive)] {
        // Polled, so the check never holds the receiver's lock while it takes deliveries.
        let limit = WAIT + Duration::from_secs(10 * rounds as u64);
        let started = Instant::now();
        let received = loop {
            let received = receiver.control_ids();
            let got: HashSet<&String> = received.iter().collect();
            let missing: Vec<&&String> = all.iter().filter(|id| !got.contains(**id)).collect();
            if missing.is_empty() {
                break received;
            }
            assert!(
                started.elapsed() < limit,
                "`{name}` lacks {} acknowledged messages after {limit:?}, e.g. {:?}",
                missing.len(),
                &missing[..missing.len().min(10)]
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        // In order per connection: the first delivery of each message follows the order it was sent in.
        let mut first_at: HashMap<&str, usize> = HashMap::new();
        for (at, id) in received.iter().enumerate() {
            first_at.entry(id.as_str()).or_insert(at);
        }
        for ids in &acked {
            let places: Vec<usize> = ids.iter().map(|id| first_at[id.as_str()]).collect();
            assert!(places.windows(2).all(|w| w[0] < w[1]), "`{name}` got one connection's messages out of order: {ids:?}");
        }
        let duplicates = received.len() - first_at.len();
        report.push(format!("{name}: {} delivered, {duplicates} duplicates", received.len()));
    }
    println!("crash drill: {rounds} rounds, {} acknowledged, 0 lost; {}", all.len(), report.join("; "));
    // The server is whole after the last restart.
    let ack = sluice.client().send(&adt("AFTER-DRILL"));
    assert_eq!(ack_field(&ack, "MSA", 1), "AA");
    wait_until(WAIT, "the message after the drill delivered", || lab.control_ids().contains(&"AFTER-DRILL".to_string()));
}
