//! The message journal end to end: messages of several types, one rejected
//! by a validator and one dead-lettered by a failing destination, found by
//! control ID, patient, type, ACK code and state; a message shown segment
//! by segment with its ACK and history; bodies expiring while metadata
//! stays; a resend delivered again; nothing an AA promised lost to `kill -9`.

use std::time::Duration;

use serde_json::Value;

use crate::support::{HttpSink, Sluice, ack_field, adt, wait_until};

const WAIT: Duration = Duration::from_secs(30);
const FAST_RETRY: &str = "retry = { initial_backoff = \"50ms\", multiplier = 2.0, max_backoff = \"200ms\", max_attempts = 2, jitter = 0.0 }";

fn oru(control_id: &str, patient: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|LIS|LAB|EHR|HOSP|20260101120000||ORU^R01^ORU_R01|{control_id}|P|2.5.1\rPID|1||{patient}^^^HOSP^MR||Roe^Rita||19800101|F\rOBX|1|NM|GLU||5.4|mmol/L\r"
    )
    .into_bytes()
}

fn adt_without_sex(control_id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|EHR|HOSP|LIS|LAB|20260101120000||ADT^A01^ADT_A01|{control_id}|P|2.5.1\rPID|1||PNS^^^HOSP^MR||Doe^Jane\r").into_bytes()
}

fn lab_to(sink: &HttpSink) -> String {
    format!(
        "[connectors.lab]\nplugin = \"http\"\nconfig = {{ url = \"{}\" }}\n{FAST_RETRY}\n[plugins.http]\nallow = {{ http = [\"{}\"] }}\n",
        sink.url(),
        sink.host()
    )
}

fn search(sluice: &Sluice, args: &[&str]) -> Vec<Value> {
    let args: Vec<&str> = ["messages", "search"].iter().copied().chain(args.iter().copied()).collect();
    sluice.cli_json(&args)["messages"].as_array().cloned().unwrap_or_default()
}

fn control_ids(found: &[Value]) -> Vec<String> {
    found.iter().map(|m| m["control_id"].as_str().unwrap_or_default().to_string()).collect()
}

fn only(sluice: &Sluice, args: &[&str]) -> Value {
    let found = search(sluice, args);
    assert_eq!(found.len(), 1, "`messages search {}` found {found:?}", args.join(" "));
    found[0].clone()
}

#[test]
fn messages_are_found_by_control_id_patient_type_ack_and_state() {
    let sink = HttpSink::start();
    sink.answer_when("BAD", 400);
    let mut sluice =
        Sluice::prepare(&format!("[[validate]]\nplugin = \"require-fields\"\nconfig = {{ paths = [\"PID-8\"] }}\n{}[connectors.archive]\n", lab_to(&sink)));
    sluice.launch();
    let mut client = sluice.client();
    for (message, code) in [(adt("J1"), "AA"), (oru("J2", "P77"), "AA"), (adt_without_sex("J3"), "AR"), (adt("BAD1"), "AA")] {
        let ack = client.send(&message);
        assert_eq!(ack_field(&ack, "MSA", 1), code, "{}", String::from_utf8_lossy(&ack));
    }
    sink.wait_for_delivered(2, WAIT);
    wait_until(WAIT, "BAD1 dead on lab", || sluice.dead_letters("lab").len() == 1);

    let j1 = only(&sluice, &["--control-id", "J1"]);
    assert_eq!((j1["ack_code"].as_str(), j1["patient_id"].as_str(), j1["interface"].as_str()), (Some("AA"), Some("PATJ1"), Some("default")));
    assert_eq!(j1["states"]["lab"], "delivered", "{j1}");
    assert_eq!(j1["states"]["archive"], "queued", "a connector without a plugin holds it: {j1}");
    assert_eq!(control_ids(&search(&sluice, &["--patient", "P77"])), ["J2"]);
    assert_eq!(control_ids(&search(&sluice, &["--type", "ORU^R01"])), ["J2"]);
    assert_eq!(control_ids(&search(&sluice, &["--type", "ADT"])), ["BAD1", "J3", "J1"], "newest first");
    let j3 = only(&sluice, &["--ack", "AR"]);
    assert_eq!(j3["control_id"], "J3");
    assert!(j3["reason"].as_str().unwrap_or_default().contains("PID-8"), "{j3}");
    assert!(j3["states"].as_object().unwrap().is_empty(), "a rejected message is queued nowhere: {j3}");
    let bad = only(&sluice, &["--state", "dead"]);
    assert_eq!((bad["control_id"].as_str(), bad["states"]["lab"].as_str()), (Some("BAD1"), Some("dead")));
    assert_eq!(control_ids(&search(&sluice, &["--sender", "LIS^LAB", "--since", "1h"])), ["J2"]);
    assert_eq!(control_ids(&search(&sluice, &["--type", "ADT", "--limit", "2"])), ["BAD1", "J3"], "a page");
    let next = sluice.cli_json(&["messages", "search", "--type", "ADT", "--limit", "2"])["next"].as_u64().expect("a cursor");
    assert_eq!(control_ids(&search(&sluice, &["--type", "ADT", "--before", &next.to_string()])), ["J1"], "the next page");

    // `show`: segments with field numbers, the ACK sent, the history.
    let id = j1["id"].as_u64().unwrap().to_string();
    let (ok, shown, stderr) = sluice.cli(&["messages", "show", &id]);
    assert!(ok, "{stderr}");
    assert!(shown.contains("PID-3   PATJ1^^^HOSP^MR"), "{shown}");
    assert!(shown.contains("MSH-10  J1"), "{shown}");
    assert!(shown.contains("ACK sent:") && shown.contains("MSA-1   AA"), "{shown}");
    assert!(shown.lines().any(|l| l.contains("lab") && l.contains("delivered")), "{shown}");
    let bad_id = bad["id"].as_u64().unwrap().to_string();
    let (_, bad_shown, _) = sluice.cli(&["messages", "show", &bad_id]);
    assert!(bad_shown.lines().any(|l| l.contains("lab") && l.contains("dead") && l.contains("400")), "{bad_shown}");
}

#[test]
fn bodies_expire_after_retention_while_metadata_stays_and_disk_use_falls() {
    // Delivered, so that the journal holds the bodies (it takes them over from the outbox).
    let sink = HttpSink::start();
    let mut sluice = Sluice::prepare(&format!("[journal]\nretention = \"3s\"\ncompact_interval = \"500ms\"\n{}", lab_to(&sink)));
    sluice.launch();
    let mut client = sluice.client();
    let padding = "X".repeat(60_000);
    for i in 0..30 {
        let message = format!("MSH|^~\\&|EHR|HOSP|LIS|LAB|20260101120000||ADT^A08|EXP{i}|P|2.5.1\rPID|1||PEXP^^^HOSP^MR\rNTE|1||{padding}\r");
        assert_eq!(ack_field(&client.send(message.as_bytes()), "MSA", 1), "AA");
    }
    sink.wait_for_delivered(30, WAIT);
    wait_until(WAIT, "all delivered", || sluice.depths("lab") == (0, 0));
    let peak = sluice.metric("sluice_journal_bytes", &[]);
    assert!(peak > 30.0 * 60_000.0, "the bodies are counted: {peak}");
    let found = only(&sluice, &["--control-id", "EXP0"]);
    let id = found["id"].as_u64().unwrap().to_string();
    assert!(sluice.cli_json(&["messages", "show", &id])["raw"].as_str().is_some(), "kept within retention");

    wait_until(WAIT, "the body expired", || sluice.cli_json(&["messages", "show", &id])["raw"].is_null());
    let shown = sluice.cli_json(&["messages", "show", &id]);
    assert_eq!((shown["control_id"].as_str(), shown["patient_id"].as_str()), (Some("EXP0"), Some("PEXP")), "metadata stays: {shown}");
    assert_eq!(search(&sluice, &["--patient", "PEXP"]).len(), 30);
    wait_until(WAIT, "disk use falling after compaction", || sluice.metric("sluice_journal_bytes", &[]) < peak / 4.0);
    let (ok, _, stderr) = sluice.cli(&["messages", "resend", &id, "--connector", "lab"]);
    assert!(!ok && stderr.contains("no longer kept"), "an expired body cannot be resent: {stderr}");
}

#[test]
fn resend_queues_a_journalled_message_again_and_it_is_delivered() {
    let sink = HttpSink::start();
    let mut sluice = Sluice::prepare(&lab_to(&sink));
    sluice.launch();
    assert_eq!(ack_field(&sluice.client().send(&adt("R1")), "MSA", 1), "AA");
    sink.wait_for_delivered(1, WAIT);
    let id = only(&sluice, &["--control-id", "R1"])["id"].as_u64().unwrap().to_string();

    let (ok, stdout, stderr) = sluice.cli(&["messages", "resend", &id, "--connector", "lab"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("queued again"), "{stdout}");
    sink.wait_for_delivered(2, WAIT);
    assert_eq!(sink.delivered_ids(), ["R1", "R1"]);
    wait_until(WAIT, "the second delivery journalled", || {
        let events = sluice.cli_json(&["messages", "show", &id])["events"].as_array().cloned().unwrap_or_default();
        events.iter().filter(|e| e["event"] == "delivered").count() == 2
    });
    let events = sluice.cli_json(&["messages", "show", &id])["events"].as_array().cloned().unwrap();
    let resent = events.iter().find(|e| e["event"] == "resent").expect("the resend is audited");
    assert!(resent["by"].as_str().unwrap_or_default().contains("127.0.0.1"), "who: {resent}");
    let (ok, _, stderr) = sluice.cli(&["messages", "resend", &id, "--connector", "nowhere"]);
    assert!(!ok && stderr.contains("nowhere"), "{stderr}");
}

#[test]
fn the_journal_survives_a_restart_and_kill_9_loses_no_entry_of_an_acknowledged_message() {
    let mut sluice = Sluice::start("");
    let addr = sluice.addr;
    let senders: Vec<_> = (0..4)
        .map(|c| {
            std::thread::spawn(move || {
                let mut client = crate::support::RawClient::connect(addr);
                let mut acknowledged = Vec::new();
                for i in 0..50 {
                    let id = format!("K{c}-{i}");
                    client.send_frame(&adt(&id));
                    match client.read_frame() {
                        Some(ack) if ack_field(&ack, "MSA", 1) == "AA" => acknowledged.push(id),
                        _ => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(150));
    sluice.kill9();
    let acknowledged: Vec<String> = senders.into_iter().flat_map(|s| s.join().unwrap()).collect();
    assert!(!acknowledged.is_empty(), "some messages were acknowledged before the kill");
    sluice.restart();
    let found = search(&sluice, &["--limit", "1000"]);
    let journalled: std::collections::HashSet<String> = control_ids(&found).into_iter().collect();
    let missing: Vec<&String> = acknowledged.iter().filter(|id| !journalled.contains(*id)).collect();
    assert!(missing.is_empty(), "acknowledged but not journalled after kill -9: {missing:?}");
    assert_eq!(only(&sluice, &["--control-id", &acknowledged[0]])["ack_code"], "AA");
}
