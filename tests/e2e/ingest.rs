//! The message path end to end: ACK rules on the wire, storage in every
//! connector's outbox, duplicate suppression, enhanced mode, the CLI.

use crate::support::{Sluice, ack_field, adt};

/// A message gets AA only once it is in every connector's outbox; the ACK
/// mirrors the header and MSA-2 is MSH-10.
#[test]
fn accepted_message_is_in_every_outbox() {
    let sluice = Sluice::start("");
    let mut client = sluice.client();
    let ack = client.send(&adt("CTRL-0001"));
    assert_eq!(ack_field(&ack, "MSA", 1), "AA");
    assert_eq!(ack_field(&ack, "MSA", 2), "CTRL-0001");
    assert_eq!(ack_field(&ack, "MSH", 3), "LIS");
    assert_eq!(ack_field(&ack, "MSH", 4), "LAB");
    assert_eq!(ack_field(&ack, "MSH", 5), "EHR");
    assert_eq!(ack_field(&ack, "MSH", 6), "HOSP");
    assert_eq!(ack_field(&ack, "MSH", 9), "ACK^A01^ACK");
    assert_eq!(ack_field(&ack, "MSH", 12), "2.5.1");
    assert_eq!(sluice.outbox("lab"), ["CTRL-0001"]);
    assert_eq!(sluice.outbox("archive"), ["CTRL-0001"]);
    assert_eq!(sluice.outbox_depths(), [("archive".to_string(), 1), ("lab".to_string(), 1)]);
}

/// Outboxes keep arrival order.
#[test]
fn outbox_is_in_arrival_order() {
    let sluice = Sluice::start("");
    let mut client = sluice.client();
    let ids: Vec<String> = (0..20).map(|i| format!("ORD-{i:03}")).collect();
    for id in &ids {
        assert_eq!(ack_field(&client.send(&adt(id)), "MSA", 1), "AA");
    }
    assert_eq!(sluice.outbox("lab"), ids);
}

/// A retransmission (same sender, control ID and content) gets the stored
/// ACK again and is not queued twice; the same control ID with other content
/// is a new message.
#[test]
fn retransmission_gets_the_stored_ack_and_is_not_stored_twice() {
    let sluice = Sluice::start("");
    let mut client = sluice.client();
    let first = client.send(&adt("DUP-1"));
    let again = sluice.client().send(&adt("DUP-1"));
    assert_eq!(first, again, "byte-identical ACK, including its own MSH-10");
    assert_eq!(sluice.outbox("lab"), ["DUP-1"]);

    let mut changed = adt("DUP-1");
    changed.extend_from_slice(b"NTE|1||changed\r");
    let ack = client.send(&changed);
    assert_eq!(ack_field(&ack, "MSA", 1), "AA");
    assert_ne!(ack_field(&ack, "MSH", 10), ack_field(&first, "MSH", 10));
    assert_eq!(sluice.outbox("lab"), ["DUP-1", "DUP-1"]);
    assert!(sluice.log().contains("control ID reused with different content"), "a warning is logged");
}

/// With `dedupe_window = "0s"` every message is stored.
#[test]
fn dedupe_can_be_turned_off() {
    let sluice = Sluice::start("dedupe_window = \"0s\"");
    let mut client = sluice.client();
    client.send(&adt("SAME"));
    client.send(&adt("SAME"));
    assert_eq!(sluice.outbox("archive"), ["SAME", "SAME"]);
}

/// Enhanced mode: MSH-15 AL gets CA; NE gets no ACK at all (but is stored).
#[test]
fn enhanced_mode_follows_msh15() {
    let sluice = Sluice::start("");
    let mut client = sluice.client();
    let enhanced = |id: &str, msh15: &str| format!("MSH|^~\\&|EHR|HOSP|LIS|LAB|20260101||ORM^O01|{id}|P|2.5|||{msh15}|NE\rPID|1||9\r").into_bytes();
    let ack = client.send(&enhanced("E1", "AL"));
    assert_eq!(ack_field(&ack, "MSA", 1), "CA");
    assert_eq!(ack_field(&ack, "MSA", 2), "E1");
    // NE: nothing comes back; the next ACK on the wire is for the next message.
    client.send_frame(&enhanced("E2", "NE"));
    let ack = client.send(&enhanced("E3", "SU"));
    assert_eq!(ack_field(&ack, "MSA", 2), "E3");
    assert_eq!(ack_field(&ack, "MSA", 1), "CA");
    assert_eq!(sluice.outbox("lab"), ["E1", "E2", "E3"]);
}

/// MSH-18 is echoed and the ACK is written in the message's charset.
#[test]
fn latin1_message_is_stored_byte_exact_and_acknowledged_in_kind() {
    let sluice = Sluice::start("");
    let mut client = sluice.client();
    let raw = b"MSH|^~\\&|EHR|HOSP|LIS|LAB|20260101||ADT^A08|L\xdc1|P|2.5||||||8859/1\rPID|1||1||M\xfcller^J\xfcrgen\r";
    let ack = client.send(raw);
    assert_eq!(ack_field(&ack, "MSA", 1), "AA");
    assert_eq!(&ack_field_bytes(&ack, "MSA", 2), b"L\xdc1");
    assert_eq!(ack_field(&ack, "MSH", 18), "8859/1");
}

fn ack_field_bytes(ack: &[u8], segment: &str, field: usize) -> Vec<u8> {
    let line = ack.split(|&b| b == b'\r').find(|s| s.starts_with(segment.as_bytes())).unwrap();
    line.split(|&b| b == b'|').nth(field).unwrap().to_vec()
}

/// `sluice send` sends files and prints each ACK; load mode reports figures.
#[test]
fn send_command_prints_acks_and_load_mode_reports() {
    let sluice = Sluice::start("");
    let file = sluice.dir.path().join("two.hl7");
    std::fs::write(&file, [adt("FILE-1"), b"\n".to_vec(), adt("FILE-2")].concat()).unwrap();
    let addr = sluice.addr.to_string();
    let (ok, stdout, stderr) = sluice.cli_no_config(&["send", "--to", &addr, file.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("AA FILE-1") && stdout.contains("AA FILE-2"), "{stdout}");
    assert!(stdout.contains("MSA|AA|FILE-2"), "{stdout}");

    let (ok, stdout, stderr) = sluice.cli_no_config(&["send", "--to", &addr, "--connections", "4", "--count", "200", "--json"]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["accepted"], 200);
    assert_eq!(report["errors"], 0);
    assert!(report["latency_us"]["p99"].as_u64().unwrap() >= report["latency_us"]["p50"].as_u64().unwrap());
    assert_eq!(sluice.outbox("lab").len(), 202);
}
