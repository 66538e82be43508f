//! Interfaces end to end: several listeners in one process, each with its
//! own validators, connectors, framing and ACK policy per sender; refused
//! messages kept with their reason; configuration reloaded while clients send.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{RawClient, Sluice, ack_field, wait_until};

/// An ADT^A01 from `sender` without PID-8 (administrative sex).
fn adt_without_sex(control_id: &str, sender: &str) -> Vec<u8> {
    format!("MSH|^~\\&|{sender}|WARD|LIS|LAB|20260101120000||ADT^A01^ADT_A01|{control_id}|P|2.5.1\rPID|1||PAT1^^^HOSP^MR||Doe^Jane\r").into_bytes()
}

/// The same, asking for enhanced-mode ACKs (MSH-15 AL, MSH-16 NE).
fn adt_enhanced(control_id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|RIS|RAD|LIS|LAB|20260101120000||ADT^A01^ADT_A01|{control_id}|P|2.5.1|||AL|NE\rPID|1||PAT1^^^HOSP^MR||Doe^Jane||19700101|F\r")
        .into_bytes()
}

/// The connectors `Sluice::start` configures, kept when a test rewrites its config.
const CONNECTORS: &str = "[connectors.lab]\n[connectors.archive]\n";

const REQUIRE_SEX: &str = "validate = [{ plugin = \"require-fields\", config = { paths = [\"PID-8\"] } }]";

fn connect(sluice: &Sluice, interface: &str) -> RawClient {
    RawClient::connect(sluice.interface_addr(interface).unwrap_or_else(|| panic!("interface `{interface}` is not listening")))
}

#[test]
fn two_interfaces_judge_the_same_message_by_their_own_rules() {
    let sluice = Sluice::start(&format!("[interfaces.lab]\nlisten = \"127.0.0.1:0\"\n{REQUIRE_SEX}\nconnectors = [\"lab\"]\n"));
    let message = adt_without_sex("SAME1", "EHR");
    let ack = sluice.client().send(&message);
    assert_eq!(ack_field(&ack, "MSA", 1), "AA", "the default interface has no validator");
    let ack = connect(&sluice, "lab").send(&message);
    assert_eq!(ack_field(&ack, "MSA", 1), "AR", "{}", String::from_utf8_lossy(&ack));
    assert!(ack_field(&ack, "MSA", 3).contains("PID-8"), "{}", String::from_utf8_lossy(&ack));

    // The accepted copy went to both connectors; the lab interface feeds only `lab`.
    assert_eq!(sluice.outbox("lab"), ["SAME1"]);
    assert_eq!(sluice.outbox("archive"), ["SAME1"]);

    // Per interface and per sender: what each sender got, and the connection lists.
    let interfaces = sluice.interfaces();
    let lab = interfaces.iter().find(|i| i["name"] == "lab").expect("lab listed");
    assert_eq!(lab["validators"], serde_json::json!(["require-fields"]));
    assert_eq!(lab["connectors"], serde_json::json!(["lab"]));
    assert_eq!(lab["senders"]["EHR^WARD"]["messages"]["AR"], 1, "{lab}");
    let default = interfaces.iter().find(|i| i["name"] == "default").expect("default listed");
    assert_eq!(default["senders"]["EHR^WARD"]["messages"]["AA"], 1, "{default}");
    assert!(default["last_message_ms"].as_u64().is_some());
    assert_eq!(sluice.metric("sluice_interface_messages_total", &[("interface", "lab"), ("sender", "EHR^WARD"), ("answer", "AR")]), 1.0);

    // The refused message is kept in its wire form with the reason.
    let rejected = sluice.cli_json(&["rejected", "list", "--interface", "lab"]);
    let entries = rejected.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{rejected}");
    assert_eq!((entries[0]["control_id"].as_str(), entries[0]["answer"].as_str()), (Some("SAME1"), Some("AR")));
}

#[test]
fn a_sender_with_on_reject_close_is_disconnected_and_its_message_kept() {
    let sluice = Sluice::start(&format!(
        "[interfaces.lab]\nlisten = \"127.0.0.1:0\"\n{REQUIRE_SEX}\n\
         [[interfaces.lab.senders]]\nsending_application = \"OLDDEV*\"\non_reject = \"close\"\n"
    ));
    let mut old_device = connect(&sluice, "lab");
    old_device.send_frame(&adt_without_sex("OLD1", "OLDDEV7"));
    assert_eq!(old_device.read_frame(), None, "closed instead of an AR");

    // Another sender on the same interface still gets its AR.
    let ack = connect(&sluice, "lab").send(&adt_without_sex("NEW1", "EHR"));
    assert_eq!(ack_field(&ack, "MSA", 1), "AR");

    let rejected = sluice.cli_json(&["rejected", "list", "--interface", "lab"]);
    let old = rejected.as_array().unwrap().iter().find(|e| e["control_id"] == "OLD1").unwrap_or_else(|| panic!("OLD1 kept: {rejected}")).clone();
    assert_eq!(old["answer"], "closed");
    assert!(old["reason"].as_str().unwrap().contains("PID-8"), "{old}");
    let id = old["id"].as_u64().unwrap().to_string();
    let (ok, shown, stderr) = sluice.cli(&["rejected", "show", &id, "--raw"]);
    assert!(ok, "{stderr}");
    assert_eq!(shown.trim_end(), String::from_utf8(adt_without_sex("OLD1", "OLDDEV7")).unwrap().replace('\r', "\n").trim_end());
    assert_eq!(sluice.metric("sluice_nacks_closed_total", &[]), 1.0);
}

#[test]
fn ack_mode_none_sends_nothing_and_the_next_frame_is_processed() {
    let sluice = Sluice::start("[interfaces.default]\n[[interfaces.default.senders]]\nsending_application = \"PUMP\"\nack_mode = \"none\"\n");
    let mut client = sluice.client();
    client.send_frame(&adt_without_sex("PUMP1", "PUMP"));
    client.send_frame(&adt_without_sex("PUMP2", "PUMP"));
    // The first frame to come back answers the third message: none for the pump's.
    let ack = client.send(&adt_without_sex("EHR1", "EHR"));
    assert_eq!((ack_field(&ack, "MSA", 1), ack_field(&ack, "MSA", 2)), ("AA".to_string(), "EHR1".to_string()));
    assert_eq!(sluice.outbox("lab"), ["PUMP1", "PUMP2", "EHR1"], "one-way messages are stored all the same");
    assert_eq!(sluice.metric("sluice_interface_messages_total", &[("sender", "PUMP^WARD"), ("answer", "none")]), 2.0);
}

#[test]
fn ack_mode_original_overrides_msh15_and_auto_honours_it() {
    let sluice = Sluice::start("[interfaces.ris]\nlisten = \"127.0.0.1:0\"\nack_mode = \"original\"\n");
    let ack = sluice.client().send(&adt_enhanced("ENH1"));
    assert_eq!(ack_field(&ack, "MSA", 1), "CA", "auto: MSH-15 AL asks for a commit ACK");
    let ack = connect(&sluice, "ris").send(&adt_enhanced("ENH2"));
    assert_eq!(ack_field(&ack, "MSA", 1), "AA", "original overrides MSH-15/16");
}

#[test]
fn framing_without_the_trailing_cr_is_accepted_only_where_allowed() {
    let sluice = Sluice::start(
        "frame_timeout = \"1s\"\n\
         [interfaces.legacy]\nlisten = \"127.0.0.1:0\"\nframing = { trailing_cr = false }\n\
         [interfaces.stx]\nlisten = \"127.0.0.1:0\"\nframing = { start = 0x02, end = 0x03, trailing_cr = false }\n",
    );
    let frame = |start: u8, end: u8, id: &str| [&[start][..], &adt_without_sex(id, "DEV"), &[end]].concat();

    let mut legacy = TcpStream::connect(sluice.interface_addr("legacy").unwrap()).unwrap();
    legacy.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    legacy.write_all(&[frame(0x0B, 0x1C, "NOCR1"), frame(0x0B, 0x1C, "NOCR2")].concat()).unwrap();
    let acks = read_frames(&mut legacy, 0x0B, 0x1C, 2);
    assert_eq!(acks.iter().map(|a| ack_field(a, "MSA", 2)).collect::<Vec<_>>(), ["NOCR1", "NOCR2"]);
    assert!(acks.iter().all(|a| ack_field(a, "MSA", 1) == "AA"));

    let mut stx = TcpStream::connect(sluice.interface_addr("stx").unwrap()).unwrap();
    stx.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stx.write_all(&frame(0x02, 0x03, "STX1")).unwrap();
    let acks = read_frames(&mut stx, 0x02, 0x03, 1);
    assert_eq!((ack_field(&acks[0], "MSA", 1), ack_field(&acks[0], "MSA", 2)), ("AA".to_string(), "STX1".to_string()));

    // The standard interface waits for the CR; the frame never ends and is refused at frame_timeout.
    let mut standard = TcpStream::connect(sluice.addr).unwrap();
    standard.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    standard.write_all(&frame(0x0B, 0x1C, "NOCR3")).unwrap();
    let refused = read_frames(&mut standard, 0x0B, 0x1C, 1);
    assert_eq!(ack_field(&refused[0], "MSA", 1), "AR");
    assert!(ack_field(&refused[0], "MSA", 3).contains("frame_timeout"), "{}", String::from_utf8_lossy(&refused[0]));
    assert_eq!(sluice.outbox("lab"), ["NOCR1", "NOCR2", "STX1"]);
}

/// Reads `n` frames delimited by `start` .. `end` (a CR after `end` is skipped).
fn read_frames(stream: &mut TcpStream, start: u8, end: u8, n: usize) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    while frames.len() < n {
        let mut chunk = [0u8; 8192];
        let read = stream.read(&mut chunk).expect("read");
        assert!(read > 0, "closed after {} frames: {:?}", frames.len(), String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..read]);
        while let (Some(s), Some(e)) = (buf.iter().position(|&b| b == start), buf.iter().position(|&b| b == end)) {
            frames.push(buf[s + 1..e].to_vec());
            buf.drain(..=e);
            if buf.first() == Some(&b'\r') {
                buf.remove(0);
            }
        }
    }
    frames
}

#[test]
fn a_reload_adds_an_interface_without_disturbing_a_sending_client_and_refuses_a_broken_config() {
    let mut sluice = Sluice::start("");
    // A client sends on the default interface throughout, on one connection.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (stop, sent, addr) = (stop.clone(), sent.clone(), sluice.addr);
        std::thread::spawn(move || {
            let mut client = RawClient::connect(addr);
            while !stop.load(Ordering::SeqCst) {
                let n = sent.load(Ordering::SeqCst);
                let ack = client.send(&adt_without_sex(&format!("LIVE{n}"), "EHR"));
                assert_eq!(ack_field(&ack, "MSA", 1), "AA", "message {n} during the reloads");
                sent.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    wait_until(Duration::from_secs(10), "the client sending", || sent.load(Ordering::SeqCst) > 5);

    // Added by editing the config file: a new interface and a new connector,
    // which the default interface (changed too) does not feed.
    let with_lab = format!(
        "[interfaces.default]\nconnectors = [\"lab\", \"archive\"]\n[interfaces.lab]\nlisten = \"127.0.0.1:0\"\n{REQUIRE_SEX}\nconnectors = [\"lis\"]\n[connectors.lis]\n{CONNECTORS}"
    );
    sluice.rewrite_config(&with_lab);
    wait_until(Duration::from_secs(20), "the lab interface", || sluice.interface_addr("lab").is_some());
    let mut lab = connect(&sluice, "lab");
    assert_eq!(ack_field(&lab.send(&adt_without_sex("LAB1", "EHR")), "MSA", 1), "AR", "the new interface runs its validator");
    assert_eq!(ack_field(&lab.send(&adt_enhanced("LAB2")), "MSA", 1), "CA");
    assert_eq!(sluice.outbox("lis"), ["LAB2"], "the new connector takes what its interface accepts");

    // A broken file is refused with the key named; everything keeps serving.
    sluice.rewrite_config(&format!("bogus_key = 1\n{with_lab}"));
    wait_until(Duration::from_secs(20), "the refusal logged", || sluice.log().contains("configuration reload refused"));
    assert!(sluice.log().contains("bogus_key"), "the refusal names the key:\n{}", sluice.log());
    sluice.signal("HUP");
    wait_until(Duration::from_secs(20), "the SIGHUP refusal", || sluice.metric("sluice_config_reload_failures_total", &[]) >= 2.0);
    assert_eq!(ack_field(&lab.send(&adt_enhanced("LAB3")), "MSA", 1), "CA", "the lab interface still serves");

    // Removed: it stops accepting; its open connection ends after its message.
    sluice.rewrite_config(&format!("[connectors.lis]\n{CONNECTORS}"));
    wait_until(Duration::from_secs(20), "lab removed", || sluice.interface_addr("lab").is_none());
    assert_eq!(lab.read_frame(), None, "the idle lab connection is closed");

    let before = sent.load(Ordering::SeqCst);
    wait_until(Duration::from_secs(10), "the client still sending", || sent.load(Ordering::SeqCst) > before + 5);
    stop.store(true, Ordering::SeqCst);
    sender.join().expect("the default interface's client saw no error and no dropped connection");
    assert_eq!(sluice.metric("sluice_connections_accepted_total", &[]) as usize, 2, "one connection per client, never re-opened");
}
