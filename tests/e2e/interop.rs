//! Interoperability with HL7 software nobody on the team wrote (DESIGN §8):
//! `hl7.client.MLLPClient` from the PyPI `hl7` package sends the messages,
//! and both `hl7` and `hl7apy` read the ACKs. The client script is
//! tests/interop/hl7_send.py; its virtualenv is made on demand under the
//! cargo target directory from tests/interop/requirements.txt (needs
//! `python3` with the venv module, and PyPI the first time).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::support::{Sluice, adt};

pub const INTEROP_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/interop");

/// The virtualenv's python: made once per test process, and only when the
/// virtualenv is missing or was made from other requirements.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(ensure_venv)
}

fn ensure_venv() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = tmp.join("interop-venv");
    let python = venv.join("bin").join("python");
    let requirements = Path::new(INTEROP_DIR).join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).expect("tests/interop/requirements.txt");
    let stamp = venv.join("installed-requirements.txt");

    // Another test process (a second `cargo test`) may be making it too.
    std::fs::create_dir_all(tmp).unwrap();
    let lock = std::fs::File::create(tmp.join("interop-venv.lock")).unwrap();
    lock.lock().expect("lock the interop virtualenv");
    if python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"]).arg(&requirements));
    std::fs::write(&stamp, &wanted).unwrap();
    python
}

fn run(command: &mut Command) {
    let out = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(out.status.success(), "{command:?} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// Runs hl7_send.py against `sluice`, the messages given as arguments, or on
/// stdin when `stdin` is set; returns one JSON object per ACK.
fn hl7_send(sluice: &Sluice, args: &[String], stdin: Option<&str>) -> Vec<Value> {
    let mut child = Command::new(python())
        .arg(Path::new(INTEROP_DIR).join("hl7_send.py"))
        .arg(sluice.addr.ip().to_string())
        .arg(sluice.addr.port().to_string())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hl7_send.py");
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "hl7_send.py failed:\n{stdout}{stderr}\nserver log:\n{}", sluice.log());
    stdout.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))).collect()
}

fn text(message: &[u8]) -> String {
    String::from_utf8(message.to_vec()).unwrap()
}

/// The `hl7` client gets AA with MSA-2 byte-exact (also with trailing spaces
/// in the control ID), `hl7apy` reads the ACK as a valid ACK structure, and
/// each message is in both connectors' outboxes.
#[test]
fn hl7_client_gets_aa_and_message_is_in_both_outboxes() {
    let mut sluice = Sluice::start("");
    let acks = hl7_send(&sluice, &[text(&adt("PY-0001")), text(&adt("PY 0002  "))], None);
    assert_eq!(acks.len(), 2, "one ACK per message: {acks:?}");

    let ack = &acks[0];
    assert_eq!(ack["msa1"], "AA", "{ack}");
    assert_eq!(ack["msa2"], "PY-0001", "{ack}");
    assert_eq!(ack["msa2_raw"], "PY-0001", "{ack}");
    assert_eq!(ack["hl7apy"]["structure"], "ACK", "{ack}");
    assert_eq!(ack["hl7apy"]["msa1"], "AA", "{ack}");
    assert_eq!(ack["hl7apy"]["msa2"], "PY-0001", "{ack}");
    assert_eq!(ack["hl7apy"]["validation_error"], Value::Null, "{ack}");

    // hl7.parse trims the end of the message, so read the raw MSA-2 here.
    assert_eq!(acks[1]["msa1"], "AA", "{}", acks[1]);
    assert_eq!(acks[1]["msa2_raw"], "PY 0002  ", "{}", acks[1]);

    for connector in ["lab", "archive"] {
        assert_eq!(sluice.outbox(connector), ["PY-0001", "PY 0002  "], "{connector}");
    }
    assert!(sluice.is_running());
}

/// Broken messages sent by the `hl7` client get AR with the HL7 error code
/// (no MSH: 100; unknown MSH-18 charset: 103, answered with its control ID
/// in an ACK `hl7apy` accepts), are not queued, and the connection goes on.
/// Messages come on stdin here, one segment per line.
#[test]
fn hl7_client_gets_ar_for_broken_messages() {
    let mut sluice = Sluice::start("");
    let unknown_charset = "MSH|^~\\&|EHR|HOSP|LIS|LAB|20260101120000||ADT^A01^ADT_A01|PY-BAD-2|P|2.5.1||||||KLINGON\nPID|1||42";
    let good = text(&adt("PY-OK-3")).replace('\r', "\n");
    let acks = hl7_send(&sluice, &[], Some(&format!("PID|1||42\n\n{unknown_charset}\n\n{good}")));
    assert_eq!(acks.len(), 3, "one ACK per message: {acks:?}");

    assert_eq!(acks[0]["msa1"], "AR", "{}", acks[0]);
    assert_eq!(acks[0]["err3"], "100", "{}", acks[0]);

    assert_eq!(acks[1]["msa1"], "AR", "{}", acks[1]);
    assert_eq!(acks[1]["msa2"], "PY-BAD-2", "{}", acks[1]);
    assert_eq!(acks[1]["err3"], "103", "{}", acks[1]);
    assert!(acks[1]["msa3"].as_str().unwrap().contains("KLINGON"), "{}", acks[1]);
    assert_eq!(acks[1]["hl7apy"]["structure"], "ACK", "{}", acks[1]);
    assert_eq!(acks[1]["hl7apy"]["validation_error"], Value::Null, "{}", acks[1]);

    assert_eq!(acks[2]["msa1"], "AA", "{}", acks[2]);
    assert_eq!(acks[2]["msa2"], "PY-OK-3", "{}", acks[2]);

    for connector in ["lab", "archive"] {
        assert_eq!(sluice.outbox(connector), ["PY-OK-3"], "{connector}");
    }
    assert!(sluice.is_running());
}
