//! Connection storms against the real binary: many silent connections,
//! slowloris senders, random-byte sprayers, and more connections than
//! `max_connections`. Through each, a good client still gets AA, the server
//! stays up, and its memory comes back down; each test prints the server's
//! RSS before, at the peak and after (BENCHMARKS.md quotes a run).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::{RawClient, Sluice, ack_field, adt, read_to_close, wait_until};

const WAIT: Duration = Duration::from_secs(60);

struct Rss {
    name: &'static str,
    before: u64,
    peak: u64,
    /// `sluice_memory_trims_total` at the peak.
    trims: f64,
}

impl Rss {
    fn start(name: &'static str, sluice: &Sluice) -> Rss {
        let before = sluice.rss_kib();
        Rss { name, before, peak: before, trims: sluice.metric("sluice_memory_trims_total", &[]) }
    }

    fn sample(&mut self, sluice: &Sluice) {
        self.peak = self.peak.max(sluice.rss_kib());
        self.trims = sluice.metric("sluice_memory_trims_total", &[]);
    }

    /// Once the server has returned freed memory after the connections
    /// closed, prints the figures and checks the storm's memory was given
    /// back: what stays is at most half of what the storm took, plus 8 MiB
    /// (the store's write buffers keep what the storm wrote, such as the
    /// refused messages, until they are flushed).
    fn finish(self, sluice: &Sluice, connections: u64) {
        wait_until(WAIT, "freed memory returned after the storm", || sluice.metric("sluice_memory_trims_total", &[]) > self.trims);
        let after = sluice.rss_kib();
        let per_connection = self.peak.saturating_sub(self.before) as f64 / connections as f64;
        println!(
            "storm {}: RSS before {} KiB, peak {} KiB, after {} KiB ({per_connection:.1} KiB per connection at the peak)",
            self.name, self.before, self.peak, after
        );
        let grown = self.peak.saturating_sub(self.before);
        assert!(
            after <= self.before + grown / 2 + 8 * 1024,
            "{}: memory did not come back down: before {} KiB, peak {} KiB, after {after} KiB",
            self.name,
            self.before,
            self.peak
        );
    }
}

fn expect_aa(client: &mut RawClient, id: &str) {
    let ack = client.send(&adt(id));
    assert_eq!(ack_field(&ack, "MSA", 1), "AA", "{id}: {}", String::from_utf8_lossy(&ack));
    assert_eq!(ack_field(&ack, "MSA", 2), id);
}

/// Reads until the server closes the connection. Unlike `read_to_close`, a
/// reset counts as closed: a dribbled byte can cross the server's close,
/// and the server's kernel answers it with a reset.
fn read_until_closed_or_reset(stream: &mut TcpStream, limit: Duration) {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) => panic!("the server did not close the connection within {limit:?}: {e}"),
        }
    }
}

#[test]
fn a_thousand_silent_connections_close_at_idle_timeout_while_a_new_client_gets_aa() {
    // Long enough that all 1000 are open at once even on a busy machine.
    let sluice = Sluice::start("max_connections = 1200\nidle_timeout = \"15s\"\nframe_timeout = \"30s\"");
    let mut rss = Rss::start("1000 silent connections", &sluice);
    let mut silent: Vec<TcpStream> = (0..1000).map(|_| TcpStream::connect(sluice.addr).expect("connect")).collect();
    wait_until(WAIT, "1000 connections accepted", || sluice.metric("sluice_connections_accepted_total", &[]) >= 1000.0);
    assert_eq!(sluice.metric("sluice_connections_open", &[]), 1000.0, "all 1000 open at once");
    rss.sample(&sluice);

    // Meanwhile a new client is served at once.
    let mut fresh = sluice.client();
    expect_aa(&mut fresh, "STORM-IDLE-1");

    for stream in &mut silent {
        assert!(read_to_close(stream, WAIT).is_empty(), "closed without a word");
    }
    wait_until(WAIT, "every silent connection counted as an idle timeout", || sluice.metric("sluice_idle_timeouts_total", &[]) >= 1000.0);
    drop(fresh);
    wait_until(WAIT, "no connection open", || sluice.metric("sluice_connections_open", &[]) == 0.0);
    rss.finish(&sluice, 1000);
    expect_aa(&mut sluice.client(), "STORM-IDLE-2");
}

#[test]
fn two_hundred_slowloris_senders_are_each_cut_off_at_frame_timeout() {
    let mut sluice = Sluice::start("max_connections = 400\nframe_timeout = \"2s\"\nidle_timeout = \"60s\"");
    let mut rss = Rss::start("200 slowloris senders", &sluice);
    let message = [&[0x0B][..], &adt("SLOW"), &[0x1C, 0x0D]].concat();
    let mut slow: Vec<Option<TcpStream>> = (0..200)
        .map(|_| {
            let stream = TcpStream::connect(sluice.addr).expect("connect");
            stream.set_nonblocking(true).unwrap();
            Some(stream)
        })
        .collect();
    let started = Instant::now();
    let mut good = sluice.client();
    // One byte a second on each: the dribble is the attack, not a wait for the server.
    for (second, byte) in message.iter().enumerate() {
        for slot in &mut slow {
            let Some(stream) = slot else { continue };
            let mut chunk = [0u8; 4096];
            let closed = match stream.read(&mut chunk) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != ErrorKind::WouldBlock,
            };
            if closed || stream.write_all(&[*byte]).is_err() {
                *slot = None;
            }
        }
        if second == 1 {
            rss.sample(&sluice);
            expect_aa(&mut good, "STORM-SLOW-1");
        }
        if slow.iter().all(Option::is_none) {
            break;
        }
        assert!(started.elapsed() < WAIT, "slowloris senders still connected after {WAIT:?}");
        std::thread::sleep(Duration::from_secs(1));
    }
    for stream in slow.iter_mut().flatten() {
        stream.set_nonblocking(false).unwrap();
        read_until_closed_or_reset(stream, WAIT);
    }
    assert!(sluice.metric("sluice_frame_timeouts_total", &[]) >= 200.0, "each one is cut off at frame_timeout");
    expect_aa(&mut good, "STORM-SLOW-2");
    wait_until(WAIT, "only the good client open", || sluice.metric("sluice_connections_open", &[]) == 1.0);
    rss.finish(&sluice, 200);
    assert!(sluice.is_running());
    assert!(!sluice.outbox("lab").contains(&"SLOW".to_string()), "no dribbled frame was completed");
}

#[test]
fn fifty_connections_spraying_random_bytes_do_not_stop_four_good_clients() {
    let mut sluice = Sluice::start("max_connections = 200\nmax_frame_size = 65536\nframe_timeout = \"2s\"");
    let mut rss = Rss::start("50 random-byte sprayers", &sluice);
    let stop = Arc::new(AtomicBool::new(false));
    let addr = sluice.addr;
    let sprayers: Vec<_> = (0..50u64)
        .map(|n| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (n + 1);
                let mut chunk = vec![0u8; 16 * 1024];
                let mut bytes = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    // Reconnect whenever the server has had enough of this one.
                    let Ok(mut stream) = TcpStream::connect(addr) else { continue };
                    stream.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
                    while !stop.load(Ordering::SeqCst) {
                        for b in chunk.iter_mut() {
                            state ^= state << 13;
                            state ^= state >> 7;
                            state ^= state << 17;
                            *b = state as u8;
                        }
                        match stream.write_all(&chunk) {
                            Ok(()) => bytes += chunk.len() as u64,
                            Err(_) => break,
                        }
                        // About 1.6 MB/s each, 80 MB/s in all: hostile, yet leaving the good clients some CPU.
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                bytes
            })
        })
        .collect();
    let good: Vec<_> = (0..4)
        .map(|c| {
            std::thread::spawn(move || {
                let mut client = RawClient::connect(addr);
                let ids: Vec<String> = (0..100).map(|i| format!("GOOD{c}-{i}")).collect();
                for id in &ids {
                    expect_aa(&mut client, id);
                }
                ids
            })
        })
        .collect();
    let mut acked = Vec::new();
    for (i, client) in good.into_iter().enumerate() {
        if i == 0 {
            rss.sample(&sluice);
        }
        acked.extend(client.join().expect("a good client got something other than AA"));
    }
    rss.sample(&sluice);
    stop.store(true, Ordering::SeqCst);
    let sprayed: u64 = sprayers.into_iter().map(|s| s.join().unwrap()).sum();
    assert!(sprayed > 1024 * 1024, "the sprayers got their bytes in: {sprayed}");
    assert!(sluice.is_running());
    let stored = sluice.outbox("lab");
    for id in &acked {
        assert!(stored.contains(id), "{id} got AA and must be queued");
    }
    wait_until(WAIT, "the sprayers' connections closed", || sluice.metric("sluice_connections_open", &[]) == 0.0);
    rss.finish(&sluice, 54);
    println!("storm 50 random-byte sprayers: {} MiB sprayed while 4 clients got 400 AAs", sprayed / (1024 * 1024));
}

#[test]
fn connections_past_max_connections_are_refused_at_once_and_counted() {
    let sluice = Sluice::start("max_connections = 50\nidle_timeout = \"60s\"");
    let mut rss = Rss::start("50 held + 100 refused connections", &sluice);
    let mut held: Vec<RawClient> = (0..50).map(|_| sluice.client()).collect();
    // An ACK on each proves it holds a slot.
    for (i, client) in held.iter_mut().enumerate() {
        expect_aa(client, &format!("HELD-{i}"));
    }
    rss.sample(&sluice);
    let started = Instant::now();
    for _ in 0..100 {
        let mut extra = TcpStream::connect(sluice.addr).expect("connect");
        assert!(read_to_close(&mut extra, Duration::from_secs(10)).is_empty(), "refused without any data");
    }
    assert!(started.elapsed() < Duration::from_secs(30), "at once, not after idle_timeout (60 s)");
    assert_eq!(sluice.metric("sluice_connections_refused_total", &[]), 100.0);
    rss.sample(&sluice);
    // The held ones keep working.
    for (i, client) in held.iter_mut().enumerate().take(5) {
        expect_aa(client, &format!("HELD-AGAIN-{i}"));
    }
    drop(held);
    wait_until(WAIT, "the held connections closed", || sluice.metric("sluice_connections_open", &[]) == 0.0);
    rss.finish(&sluice, 150);
}
