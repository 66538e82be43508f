//! Delivery end to end: the stock `http` and `mllp` connectors deliver what
//! was acknowledged to real receivers in this process (or to a second
//! Sluice), in arrival order; failures are retried with back-off, refusals
//! go to the dead-letter queue and come back with `dlq replay`; a `kill -9`
//! loses nothing; a long backlog keeps memory flat and drains in order; the
//! admin endpoint reports it all.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{HttpSink, MllpReceiver, RawClient, Reply, Sluice, ack_field, adt, metric_sum, wait_until, wasm};

/// Long enough for anything on a busy machine; tests never wait this long when they pass.
const WAIT: Duration = Duration::from_secs(30);

/// Fast retries: 50 ms, 100 ms, then 200 ms at most; no jitter, so the
/// waits are at least these.
const FAST_RETRY: &str = "retry = { initial_backoff = \"50ms\", multiplier = 2.0, max_backoff = \"200ms\", max_attempts = 3, jitter = 0.0 }";

/// The same back-off, retrying forever.
const RETRY_FOREVER: &str = "retry = { initial_backoff = \"50ms\", multiplier = 2.0, max_backoff = \"200ms\", max_attempts = 3, jitter = 0.0 }\ndead_letter = false";

fn start(config: &str) -> Sluice {
    let mut sluice = Sluice::prepare(config);
    sluice.launch();
    sluice
}

/// `[connectors.NAME]` delivering with the stock `http` plugin to `url`, with `settings` added to its config table.
fn http_connector(name: &str, url: &str, settings: &str, retry: &str) -> String {
    format!("[connectors.{name}]\nplugin = \"http\"\nconfig = {{ url = \"{url}\"{settings} }}\n{retry}\n")
}

fn http_config(sink: &HttpSink, retry: &str) -> String {
    format!("{}[plugins.http]\nallow = {{ http = [\"{}\"] }}\n", http_connector("lab", &sink.url(), "", retry), sink.host())
}

fn mllp_config(destination: &str, settings: &str, retry: &str) -> String {
    format!(
        "[connectors.lab]\nplugin = \"mllp\"\nconfig = {{ destination = \"{destination}\"{settings} }}\n{retry}\n[plugins.mllp]\nallow = {{ mllp = [\"{destination}\"] }}\n"
    )
}

/// Sends each message on one connection; every one must get AA.
fn send_all(sluice: &Sluice, ids: &[String]) {
    let mut client = sluice.client();
    for id in ids {
        let ack = client.send(&adt(id));
        assert_eq!(ack_field(&ack, "MSA", 1), "AA", "{id}: {}", String::from_utf8_lossy(&ack));
    }
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:03}")).collect()
}

fn wait_for_depths(sluice: &Sluice, connector: &str, expected: (u64, u64)) {
    let start = Instant::now();
    loop {
        let depths = sluice.depths(connector);
        if depths == expected {
            return;
        }
        if start.elapsed() > WAIT {
            let outbox = sluice.cli_json(&["outbox", "list", connector]);
            panic!("`{connector}` still has (outbox, dead_letter) = {depths:?} after {WAIT:?}, expected {expected:?}; its outbox: {outbox}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn dead_control_ids(sluice: &Sluice, connector: &str) -> Vec<String> {
    sluice.dead_letters(connector).iter().map(|d| d["control_id"].as_str().unwrap_or_default().to_string()).collect()
}

/// Waits until the connector's dead-letter queue holds `n` messages; them.
fn wait_for_dead_letters(sluice: &Sluice, connector: &str, n: usize) -> Vec<serde_json::Value> {
    let mut dead = Vec::new();
    wait_until(WAIT, &format!("{n} dead letters in `{connector}`"), || {
        dead = sluice.dead_letters(connector);
        dead.len() >= n
    });
    dead
}

fn text(value: &serde_json::Value) -> String {
    value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string())
}

// ---------------------------------------------------------------- http

#[test]
fn http_delivers_each_message_byte_for_byte_with_its_content_type_and_headers() {
    let sink = HttpSink::start();
    let lab_url = format!("http://{}/lab", sink.addr);
    let archive_url = format!("http://{}/archive", sink.addr);
    let config = [
        http_connector("lab", &lab_url, ", content_type = \"application/hl7-v2; charset=utf-8\", headers = { X-Sluice-Test = \"lab\" }", FAST_RETRY),
        http_connector("archive", &archive_url, "", FAST_RETRY),
        format!("[plugins.http]\nallow = {{ http = [\"{}\"] }}\n", sink.host()),
    ]
    .concat();
    let sluice = start(&config);
    let sent = ids("H", 3);
    send_all(&sluice, &sent);

    let requests = sink.wait_for_delivered(6, WAIT);
    let lab: Vec<_> = requests.iter().filter(|r| r.path == "/lab").collect();
    let archive: Vec<_> = requests.iter().filter(|r| r.path == "/archive").collect();
    assert_eq!(lab.len(), 3, "each connector delivers each message once: {:?}", requests.iter().map(|r| (&r.path, r.control_id())).collect::<Vec<_>>());
    assert_eq!(archive.len(), 3);
    for (id, (lab, archive)) in sent.iter().zip(lab.iter().zip(&archive)) {
        assert!(lab.body == adt(id), "{id}: the body is the message byte for byte: {:?}", String::from_utf8_lossy(&lab.body));
        assert!(archive.body == adt(id), "{id}: the body is the message byte for byte: {:?}", String::from_utf8_lossy(&archive.body));
        assert_eq!(lab.header("content-type"), Some("application/hl7-v2; charset=utf-8"), "{id}: the configured content type");
        assert_eq!(lab.header("x-sluice-test"), Some("lab"), "{id}: configured headers are sent");
        let default = archive.header("content-type").unwrap_or_default();
        assert!(default.to_ascii_lowercase().contains("hl7"), "{id}: the default content type names HL7: {default:?}");
    }
    assert!(sink.requests().iter().all(|r| r.status == 200), "nothing was retried");
    wait_for_depths(&sluice, "lab", (0, 0));
    wait_for_depths(&sluice, "archive", (0, 0));
}

#[test]
fn http_5xx_is_retried_with_growing_back_off_until_the_sink_recovers_and_order_is_kept() {
    let sink = HttpSink::start();
    sink.answer_next(2, 503);
    let sluice = start(&http_config(&sink, FAST_RETRY));
    let sent = ids("R", 3);
    send_all(&sluice, &sent);

    sink.wait_for_delivered(3, WAIT);
    let requests = sink.requests();
    let seen: Vec<(String, u16)> = requests.iter().map(|r| (r.control_id(), r.status)).collect();
    let expected: Vec<(String, u16)> = [("R000", 503), ("R000", 503), ("R000", 200), ("R001", 200), ("R002", 200)].iter().map(|(id, s)| (id.to_string(), *s)).collect();
    assert_eq!(seen, expected, "the first message is tried until it gets through, and holds the others back");
    assert_eq!(sink.delivered_ids(), sent, "all delivered, in send order");

    // Back-off: 50 ms after the first failure, 100 ms after the second (no jitter; lower bounds only).
    let first_gap = requests[1].at - requests[0].at;
    let second_gap = requests[2].at - requests[1].at;
    assert!(first_gap >= Duration::from_millis(50), "the first retry came {first_gap:?} after the failure; initial_backoff is 50ms");
    assert!(second_gap >= Duration::from_millis(100), "the second retry came {second_gap:?} after the failure; the back-off doubles to 100ms");
    wait_for_depths(&sluice, "lab", (0, 0));
}

#[test]
fn http_400_goes_straight_to_the_dead_letter_queue_and_replay_delivers_it() {
    let sink = HttpSink::start();
    sink.answer_when("BAD", 400);
    let sluice = start(&http_config(&sink, FAST_RETRY));
    send_all(&sluice, &["OK1".into(), "BAD1".into(), "OK2".into()]);

    sink.wait_for_delivered(2, WAIT);
    assert_eq!(sink.delivered_ids(), ["OK1", "OK2"], "the message after the refused one is still delivered");
    let bad_requests = sink.requests().iter().filter(|r| r.control_id() == "BAD1").count();
    assert_eq!(bad_requests, 1, "a 400 is not retried");

    let dead = wait_for_dead_letters(&sluice, "lab", 1);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["control_id"], "BAD1", "{}", dead[0]);
    assert_eq!(dead[0]["attempts"], 1, "dead-lettered after one attempt: {}", dead[0]);
    assert!(text(&dead[0]["error"]).contains("400"), "the error names the status: {}", dead[0]);
    assert!(text(&dead[0]["message_type"]).contains("ADT"), "{}", dead[0]);
    assert!(dead[0]["dead_at_ms"].as_u64().is_some_and(|ms| ms > 0), "{}", dead[0]);
    wait_for_depths(&sluice, "lab", (0, 1));

    // The receiver is fixed: replaying delivers it, and the queue empties.
    sink.answer_ok();
    let (ok, stdout, stderr) = sluice.cli(&["dlq", "replay", "lab", "--all"]);
    assert!(ok, "dlq replay failed: {stdout}{stderr}");
    sink.wait_for_delivered(3, WAIT);
    assert_eq!(sink.delivered_ids(), ["OK1", "OK2", "BAD1"]);
    assert!(sink.delivered()[2].body == adt("BAD1"), "the replayed message is the original");
    wait_for_depths(&sluice, "lab", (0, 0));
    assert!(sluice.dead_letters("lab").is_empty());
}

#[test]
fn dlq_show_has_the_raw_message_and_purge_removes_one_or_all() {
    let sink = HttpSink::start();
    sink.answer_when("BAD", 400);
    let sluice = start(&http_config(&sink, FAST_RETRY));
    send_all(&sluice, &["BAD1".into(), "BAD2".into(), "BAD3".into(), "OK1".into()]);
    sink.wait_for_delivered(1, WAIT);

    let dead = wait_for_dead_letters(&sluice, "lab", 3);
    assert_eq!(dead_control_ids(&sluice, "lab"), ["BAD1", "BAD2", "BAD3"], "oldest first");
    let id_of = |control_id: &str| text(&dead.iter().find(|d| d["control_id"] == control_id).unwrap()["id"]);

    let shown = sluice.cli_json(&["dlq", "show", "lab", &id_of("BAD2")]);
    assert_eq!(shown["control_id"], "BAD2", "{shown}");
    assert_eq!(text(&shown["raw"]), String::from_utf8(adt("BAD2")).unwrap(), "`dlq show` gives the message as received");

    let (ok, stdout, stderr) = sluice.cli(&["dlq", "purge", "lab", &id_of("BAD2")]);
    assert!(ok, "dlq purge failed: {stdout}{stderr}");
    assert_eq!(dead_control_ids(&sluice, "lab"), ["BAD1", "BAD3"], "only the purged one is gone");
    wait_for_depths(&sluice, "lab", (0, 2));

    let (ok, stdout, stderr) = sluice.cli(&["dlq", "purge", "lab", "--all"]);
    assert!(ok, "dlq purge --all failed: {stdout}{stderr}");
    assert!(sluice.dead_letters("lab").is_empty());
    wait_for_depths(&sluice, "lab", (0, 0));
    assert_eq!(sink.requests().len(), 4, "purging sends nothing");
}

#[test]
fn http_a_host_not_in_allow_http_is_never_contacted() {
    let sink = HttpSink::start();
    // No grant at all, and a grant for the same host on another port.
    for grants in ["", "[plugins.http]\nallow = { http = [\"127.0.0.1:1\", \"lab.example.org\"] }\n"] {
        let config = format!("{}{grants}", http_connector("lab", &sink.url(), "", FAST_RETRY));
        let sluice = start(&config);
        send_all(&sluice, &["DENIED1".into()]);

        let dead = wait_for_dead_letters(&sluice, "lab", 1);
        let error = text(&dead[0]["error"]).to_ascii_lowercase();
        assert!(
            ["denied", "not allowed", "allow", "not granted", "forbidden", "not permitted"].iter().any(|w| error.contains(w)),
            "grants {grants:?}: the error says the host is not allowed: {}",
            dead[0]
        );
        assert!(sink.requests().is_empty(), "grants {grants:?}: the sink was contacted: {:?}", sink.requests());
    }
}

// ---------------------------------------------------------------- mllp

#[test]
fn mllp_to_another_sluice_aa_is_delivered_and_ar_is_dead_lettered_with_its_text() {
    let mut receiver = Sluice::prepare(
        "[[validate]]\nplugin = \"misbehave\"\nconfig = { mode = \"reject\", when = \"REJ\", text = \"the receiver refuses this one\" }\n[connectors.inbox]\n",
    );
    receiver.install_plugin("misbehave", Path::new(wasm::MISBEHAVE));
    receiver.launch();
    let sender = start(&mllp_config(&receiver.addr.to_string(), "", FAST_RETRY));
    send_all(&sender, &["OK1".into(), "REJ1".into(), "OK2".into()]);

    let mut inbox = Vec::new();
    wait_until(WAIT, "OK1 and OK2 in the receiver's outbox", || {
        inbox = receiver.outbox("inbox");
        inbox.len() >= 2
    });
    assert_eq!(inbox, ["OK1", "OK2"], "the receiver stored what it accepted, in order");

    let dead = wait_for_dead_letters(&sender, "lab", 1);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["control_id"], "REJ1", "{}", dead[0]);
    assert_eq!(dead[0]["attempts"], 1, "an AR is not retried: {}", dead[0]);
    assert!(text(&dead[0]["error"]).contains("the receiver refuses this one"), "the error carries the receiver's text: {}", dead[0]);
    wait_for_depths(&sender, "lab", (0, 1));
}

#[test]
fn mllp_an_ack_with_the_wrong_msa_2_is_never_a_success() {
    let receiver = MllpReceiver::start();
    receiver.reply_when("WRONG", Reply::WrongControlId);
    let sluice = start(&mllp_config(&receiver.addr.to_string(), "", FAST_RETRY));
    send_all(&sluice, &["WRONG1".into(), "OK1".into()]);

    let got = receiver.wait(WAIT, "OK1", |ids| ids.iter().any(|id| id == "OK1"));
    assert_eq!(got, ["WRONG1", "WRONG1", "WRONG1", "OK1"], "tried max_attempts (3) times, then the next message");
    let dead = wait_for_dead_letters(&sluice, "lab", 1);
    assert_eq!(dead[0]["control_id"], "WRONG1", "{}", dead[0]);
    assert_eq!(dead[0]["attempts"], 3, "{}", dead[0]);
    assert!(text(&dead[0]["error"]).contains("MSA-2"), "the error says what was wrong: {}", dead[0]);
    wait_for_depths(&sluice, "lab", (0, 1));
}

#[test]
fn mllp_ae_is_retried_or_dead_lettered_as_on_ae_says() {
    let (retrying, strict) = (MllpReceiver::start(), MllpReceiver::start());
    retrying.reply_next(1, Reply::Error("busy, try later".into()));
    strict.reply_next(1, Reply::Error("busy, try later".into()));
    let config = format!(
        "[connectors.retrying]\nplugin = \"mllp\"\nconfig = {{ destination = \"{a}\", on_ae = \"retry\" }}\n{FAST_RETRY}\n\
[connectors.strict]\nplugin = \"mllp\"\nconfig = {{ destination = \"{b}\", on_ae = \"dead_letter\" }}\n{FAST_RETRY}\n\
[plugins.mllp]\nallow = {{ mllp = [\"{a}\", \"{b}\"] }}\n",
        a = retrying.addr,
        b = strict.addr
    );
    let sluice = start(&config);
    send_all(&sluice, &["AE1".into(), "AE2".into()]);

    assert_eq!(retrying.wait_for(3, WAIT), ["AE1", "AE1", "AE2"], "on_ae = retry: the AE is retried, then delivered");
    assert_eq!(strict.wait_for(2, WAIT), ["AE1", "AE2"], "on_ae = dead_letter: not retried");
    let dead = wait_for_dead_letters(&sluice, "strict", 1);
    assert_eq!(dead_control_ids(&sluice, "strict"), ["AE1"]);
    assert!(text(&dead[0]["error"]).contains("busy, try later"), "{}", dead[0]);
    wait_for_depths(&sluice, "retrying", (0, 0));
    wait_for_depths(&sluice, "strict", (0, 1));
    assert_eq!(retrying.messages().len(), 3);
}

#[test]
fn mllp_receiver_down_then_up_messages_queue_then_all_arrive_in_order() {
    let mut receiver = MllpReceiver::reserve();
    let sluice = start(&mllp_config(&receiver.addr.to_string(), "", RETRY_FOREVER));
    let sent = ids("Q", 20);
    send_all(&sluice, &sent);
    assert_eq!(sluice.outbox("lab"), sent, "everything waits in the outbox, in order");

    // The worker is trying, and says why it cannot deliver.
    wait_until(WAIT, "a failed attempt noted on the oldest entry", || {
        let list = sluice.cli_json(&["outbox", "list", "lab", "--limit", "1"]);
        list[0]["attempts"].as_u64().unwrap_or(0) >= 1 && list[0]["last_error"].is_string()
    });
    assert!(sluice.dead_letters("lab").is_empty(), "dead_letter = false: nothing is given up");

    receiver.listen();
    let got = receiver.wait_for(20, WAIT);
    assert_eq!(got, sent, "all arrive once the receiver listens, in order, once each");
    wait_for_depths(&sluice, "lab", (0, 0));
    assert_eq!(receiver.messages().len(), 20);
}

// ---------------------------------------------------------------- crash

/// `got` is `expected` in order, except for at most one jump back after
/// index `clean_prefix` (the restart): a contiguous re-delivery of messages
/// delivered just before the kill. Returns the number of duplicates.
fn check_at_least_once_in_order(expected: &[String], got: &[String], clean_prefix: usize) -> usize {
    let position = |id: &str| expected.iter().position(|e| e == id);
    let mut next = 0;
    let mut jumped = None;
    for (i, id) in got.iter().enumerate() {
        if next < expected.len() && *id == expected[next] {
            next += 1;
            continue;
        }
        let back = position(id).filter(|&q| q < next);
        match back {
            Some(q) if jumped.is_none() && i >= clean_prefix => {
                jumped = Some((i, q));
                next = q + 1;
            }
            _ => panic!(
                "delivery #{i} is {id}, expected {:?} (jump back so far: {jumped:?}, {clean_prefix} delivered before the kill); around it: {:?}",
                expected.get(next),
                &got[i.saturating_sub(5)..(i + 5).min(got.len())]
            ),
        }
    }
    assert_eq!(next, expected.len(), "not everything was delivered: the last was {:?}", expected.get(next.wrapping_sub(1)));
    got.len() - expected.len()
}

#[test]
fn kill_9_while_delivering_loses_nothing_and_keeps_order() {
    const MESSAGES: usize = 300;
    let sink = HttpSink::start();
    // Hold deliveries back (503) while the messages are sent, then deliver slowly.
    sink.answer_always(503);
    sink.slow_down(Duration::from_millis(5));
    let mut sluice = start(&http_config(&sink, RETRY_FOREVER));
    let sent = ids("C", MESSAGES);
    send_all(&sluice, &sent);
    assert_eq!(sluice.outbox("lab"), sent, "queued in send order");

    sink.answer_ok();
    sink.wait_for_delivered(MESSAGES / 3, WAIT);
    sluice.kill9();
    let before_kill = sink.delivered().len();
    assert!(before_kill < MESSAGES, "everything was delivered before the kill; slow the sink down");

    sluice.restart();
    let all: HashSet<&String> = sent.iter().collect();
    sink.wait(WAIT, &format!("all {MESSAGES} messages delivered after the restart"), |requests| {
        requests.iter().filter(|r| r.delivered()).map(|r| r.control_id()).filter(|id| all.contains(id)).collect::<HashSet<_>>().len() == MESSAGES
    });
    let got = sink.delivered_ids();
    let duplicates = check_at_least_once_in_order(&sent, &got, before_kill);
    eprintln!("kill -9 after {before_kill} deliveries: {duplicates} delivered again after the restart");
    wait_for_depths(&sluice, "lab", (0, 0));
    assert_eq!(sink.delivered().len(), got.len(), "nothing more arrives once the outbox is empty");
}

// ---------------------------------------------------------------- backlog

#[test]
fn a_backlog_of_10_000_keeps_memory_flat_and_drains_in_order() {
    const SENDERS: usize = 8;
    const PER_SENDER: usize = 1250;
    const TOTAL: usize = SENDERS * PER_SENDER;
    const BOUND_KIB: u64 = 64 * 1024;
    let mut receiver = MllpReceiver::reserve();
    let sluice = start(&mllp_config(&receiver.addr.to_string(), "", RETRY_FOREVER));

    let started = Instant::now();
    let sent = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (sent, addr) = (sent.clone(), sluice.addr);
            std::thread::spawn(move || {
                let mut client = RawClient::connect(addr);
                for i in 0..PER_SENDER {
                    let id = format!("B{s}-{i:04}");
                    let ack = client.send(&adt(&id));
                    assert_eq!(ack_field(&ack, "MSA", 1), "AA", "{id}: {}", String::from_utf8_lossy(&ack));
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    wait_until(Duration::from_secs(60), "the first 1 000 messages acknowledged", || sent.load(Ordering::Relaxed) >= 1000);
    let baseline = sluice.rss_kib();
    eprintln!("1 000 queued after {:?}", started.elapsed());
    let sampler = RssSampler::start(sluice.pid().unwrap());
    for sender in senders {
        sender.join().expect("a sender failed");
    }
    let queued_in = started.elapsed();
    assert_eq!(sluice.depths("lab"), (TOTAL as u64, 0), "all {TOTAL} wait in the outbox");
    let queued = sluice.outbox("lab");
    assert_eq!(queued.len(), TOTAL);
    for s in 0..SENDERS {
        let prefix = format!("B{s}-");
        let mine: Vec<&String> = queued.iter().filter(|id| id.starts_with(&prefix)).collect();
        assert!(mine.len() == PER_SENDER && mine.windows(2).all(|w| w[0] < w[1]), "sender {s}'s messages are queued in its order");
    }

    receiver.listen();
    let draining = Instant::now();
    let got = receiver.wait_for(TOTAL, Duration::from_secs(120));
    let drained_in = draining.elapsed();
    wait_for_depths(&sluice, "lab", (0, 0));
    let peak = sampler.stop();
    assert!(got == queued, "the backlog arrives exactly once each, in outbox order (got {} messages)", got.len());
    assert!(
        peak <= baseline + BOUND_KIB,
        "RSS grew from {} MiB after 1 000 messages to {} MiB (bound +{} MiB)",
        baseline / 1024,
        peak / 1024,
        BOUND_KIB / 1024
    );
    eprintln!(
        "queued {TOTAL} in {queued_in:?}, drained in {drained_in:?}; RSS {} MiB after 1 000 queued, at most {} MiB through all queued and drained",
        baseline / 1024,
        peak / 1024
    );
}

/// Reads a process's VmRSS every 100 ms in a thread and keeps the largest.
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut peak = 0;
                loop {
                    if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                        && let Some(kib) = status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                    {
                        peak = peak.max(kib);
                    }
                    if stop.load(Ordering::Relaxed) {
                        return peak;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        RssSampler { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

// ---------------------------------------------------------------- admin

#[test]
fn admin_health_readiness_and_delivery_metrics() {
    let sink = HttpSink::start();
    sink.answer_next(1, 503);
    let sluice = start(&http_config(&sink, FAST_RETRY));
    assert_eq!(sluice.admin_get("/healthz", None).0, 200);
    assert_eq!(sluice.admin_get("/readyz", None).0, 200);
    send_all(&sluice, &ids("M", 3));
    sink.wait_for_delivered(3, WAIT);

    let mut metrics = String::new();
    wait_until(WAIT, "3 delivered attempts in /metrics", || {
        let (status, body) = sluice.admin_get("/metrics", None);
        assert_eq!(status, 200, "{body}");
        metrics = body;
        metric_sum(&metrics, "sluice_delivery_attempts_total", &[("connector", "lab"), ("result", "delivered")]) >= 3.0
    });
    let retried = metric_sum(&metrics, "sluice_delivery_attempts_total", &[("connector", "lab"), ("result", "retry")]);
    assert!(retried >= 1.0, "the 503 counts as a retry: {metrics}");
    assert_eq!(metric_sum(&metrics, "sluice_delivery_attempts_total", &[("connector", "lab"), ("result", "rejected")]), 0.0, "{metrics}");
}

#[test]
fn admin_token_guards_metrics_and_the_cli_uses_it() {
    let sluice = start("[admin]\ntoken = \"let-me-in\"\n[connectors.lab]\n");
    send_all(&sluice, &["T1".into()]);
    assert_eq!(sluice.admin_get("/healthz", None).0, 200, "health needs no token");
    assert_eq!(sluice.admin_get("/readyz", None).0, 200, "readiness needs no token");
    assert_eq!(sluice.admin_get("/metrics", None).0, 401, "metrics need the token");
    assert_eq!(sluice.admin_get("/metrics", Some("guess")).0, 401, "a wrong token is refused");
    let (status, body) = sluice.admin_get("/metrics", Some("let-me-in"));
    assert_eq!(status, 200, "{body}");

    // The CLI reads the token from the config it is given.
    assert_eq!(sluice.depths("lab"), (1, 0));
    assert_eq!(sluice.outbox("lab"), ["T1"]);
    let (ok, stdout, stderr) = sluice.cli_with_env(&["outbox", "stats", "--json"], &[("SLUICE_ADMIN__TOKEN", "guess")]);
    assert!(!ok, "the CLI with a wrong token is refused: {stdout}");
    assert!(!stderr.is_empty(), "and says why");
}

// ---------------------------------------------------------------- the fakes themselves

/// The sink and the receiver answer as scripted (no engine involved), so a
/// failure above is the engine's, not the test's.
#[test]
fn the_fake_receivers_answer_as_scripted() {
    use std::io::{Read, Write};

    let sink = HttpSink::start();
    sink.answer_next(2, 503).answer_when("BAD", 400);
    let post = |body: &str| -> u16 {
        let mut stream = std::net::TcpStream::connect(sink.addr).unwrap();
        write!(stream, "POST /hl7 HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    assert_eq!([post("a"), post("BAD"), post("b"), post("BAD"), post("c")], [503, 503, 200, 400, 200]);
    let requests = sink.wait_for_delivered(2, WAIT);
    assert_eq!(requests.iter().map(|r| r.body.as_slice()).collect::<Vec<_>>(), [b"b".as_slice(), b"c"]);
    assert_eq!(sink.requests()[0].header("content-type"), Some("text/plain"));

    let mut receiver = MllpReceiver::start();
    receiver.reply_when("WRONG", Reply::WrongControlId).reply_next(1, Reply::Reject("no".into()));
    let mut client = RawClient::connect(receiver.addr);
    assert_eq!(ack_field(&client.send(&adt("A1")), "MSA", 1), "AR");
    let ack = client.send(&adt("A2"));
    assert_eq!((ack_field(&ack, "MSA", 1), ack_field(&ack, "MSA", 2)), ("AA".into(), "A2".into()));
    assert_eq!(ack_field(&client.send(&adt("WRONG1")), "MSA", 2), "NOTWRONG1");
    receiver.stop();
    assert!(client.read_frame().is_none(), "stopping closes connections");
    assert!(std::net::TcpStream::connect(receiver.addr).is_err(), "and refuses new ones");
    receiver.listen();
    assert_eq!(ack_field(&RawClient::connect(receiver.addr).send(&adt("A3")), "MSA", 1), "AA");
    assert_eq!(receiver.wait_for(4, WAIT), ["A1", "A2", "WRONG1", "A3"]);
}

/// Depths are counted in memory as messages are queued and delivered; under
/// load a worker can deliver an entry in the moment between its durable write
/// and its count. Whatever the interleaving, `outbox stats` settles at 0.
#[test]
fn outbox_depths_settle_at_zero_after_busy_delivery_to_several_connectors() {
    const SENDERS: usize = 8;
    const PER_SENDER: usize = 250;
    let sink = HttpSink::start();
    let names = ["lab", "archive", "billing"];
    let config = names.iter().map(|name| http_connector(name, &format!("http://{}/{name}", sink.addr), "", FAST_RETRY)).collect::<String>()
        + &format!("[plugins.http]\nallow = {{ http = [\"{}\"] }}\n", sink.host());
    let sluice = start(&config);
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let addr = sluice.addr;
            std::thread::spawn(move || {
                let mut client = RawClient::connect(addr);
                for i in 0..PER_SENDER {
                    let id = format!("D{s}-{i:03}");
                    assert_eq!(ack_field(&client.send(&adt(&id)), "MSA", 1), "AA", "{id}");
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().expect("a sender failed");
    }
    sink.wait_for_delivered(SENDERS * PER_SENDER * names.len(), Duration::from_secs(120));
    for name in names {
        wait_for_depths(&sluice, name, (0, 0));
    }
}
