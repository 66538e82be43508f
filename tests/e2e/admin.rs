//! The admin endpoint of a running server: probes, metrics, the CLI
//! through it, its address file, and the token.

use std::net::SocketAddr;

use crate::support::{Sluice, ack_field, adt};

/// The admin address the server wrote to its data directory.
fn admin_addr(sluice: &Sluice) -> SocketAddr {
    let text = std::fs::read_to_string(sluice.data_dir().join("admin.addr")).expect("admin.addr while the server runs");
    text.trim().parse().unwrap()
}

/// (status, body) of a GET, with an optional bearer token.
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).proxy(None).build().into();
    let mut request = agent.get(format!("http://{addr}{path}"));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let mut response = request.call().unwrap();
    (response.status().as_u16(), response.body_mut().read_to_string().unwrap())
}

#[test]
fn probes_metrics_and_the_cli_work_through_the_admin_endpoint() {
    let mut sluice = Sluice::start("");
    let mut client = sluice.client();
    for id in ["M-1", "M-2"] {
        assert_eq!(ack_field(&client.send(&adt(id)), "MSA", 1), "AA");
    }
    let addr = admin_addr(&sluice);
    assert!(addr.ip().is_loopback());
    assert_eq!(get(addr, "/healthz", None).0, 200);
    assert_eq!(get(addr, "/readyz", None).0, 200);

    let expected = [
        "sluice_acks_total{code=\"AA\"} 2",
        "sluice_frames_total 2",
        "sluice_ack_latency_seconds_count 2",
        "sluice_connections_open 1",
        "sluice_outbox_depth{connector=\"lab\"} 2",
        "sluice_dead_letter_depth{connector=\"archive\"} 0",
    ];
    // The ACK latency is observed once the ACK is written, which may be just
    // after the client has read it: scrape until it is counted.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let metrics = loop {
        let (status, metrics) = get(addr, "/metrics", None);
        assert_eq!(status, 200);
        if expected.iter().all(|line| metrics.lines().any(|l| l == *line)) || std::time::Instant::now() > deadline {
            break metrics;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    for line in expected {
        assert!(metrics.lines().any(|l| l == line), "no `{line}` in:\n{metrics}");
    }
    let received: u64 = metrics.lines().find_map(|l| l.strip_prefix("sluice_received_bytes_total ")).unwrap().parse().unwrap();
    assert!(received > 100, "{received} bytes in");

    let (ok, stdout, stderr) = sluice.cli(&["dlq", "list", "lab"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "no dead letters in `lab`");
    let (ok, stdout, stderr) = sluice.cli(&["dlq", "replay", "lab", "--all"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "replayed 0 dead letters of `lab`");
    let (ok, _, stderr) = sluice.cli(&["dlq", "show", "lab", "7"]);
    assert!(!ok);
    assert!(stderr.contains("no dead letter 7 in `lab`"), "{stderr}");
    let (ok, _, stderr) = sluice.cli(&["outbox", "list", "nope"]);
    assert!(!ok);
    assert!(stderr.contains("no connector `nope`"), "{stderr}");

    // A clean stop removes the address file; the CLI then says what is missing.
    assert!(sluice.terminate().success());
    assert!(!sluice.data_dir().join("admin.addr").exists());
    let (ok, _, stderr) = sluice.cli(&["outbox", "stats"]);
    assert!(!ok);
    assert!(stderr.contains("`sluice serve` must be running"), "{stderr}");
}

#[test]
fn with_a_token_only_the_probes_are_open() {
    let sluice = Sluice::start("[admin]\ntoken = \"s3cret\"\n");
    let addr = admin_addr(&sluice);
    assert_eq!(get(addr, "/healthz", None).0, 200);
    assert_eq!(get(addr, "/readyz", None).0, 200);
    assert_eq!(get(addr, "/metrics", None).0, 401);
    assert_eq!(get(addr, "/api/outbox", Some("wrong")).0, 401);
    assert_eq!(get(addr, "/api/outbox", Some("s3cret")).0, 200);
    // The CLI takes the token from the same config.
    assert_eq!(sluice.outbox_depths(), [("archive".to_string(), 0), ("lab".to_string(), 0)]);
    let (ok, _, stderr) = sluice.cli(&["outbox", "stats", "--token", "wrong"]);
    assert!(!ok);
    assert!(stderr.contains("--token"), "{stderr}");
}
