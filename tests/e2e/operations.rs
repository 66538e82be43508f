//! Running the engine for years: SIGUSR1 cycles the log level, patient data
//! stays out of the logs unless `log_phi = true`, and the admin endpoint is
//! never exposed beyond loopback without a token.

use std::path::Path;
use std::time::Duration;

use crate::support::{SLUICE, Sluice, ack_field, adt, wait_until, wasm};

#[test]
fn sigusr1_cycles_the_log_level_and_back() {
    let sluice = Sluice::start("");
    sluice.client().send(&adt("LVL-1"));
    assert!(!sluice.log().contains("connection accepted"), "debug lines are off at the configured `info`");

    sluice.signal("USR1");
    wait_until(Duration::from_secs(10), "the level change logged", || sluice.log().contains("level=debug"));
    sluice.client().send(&adt("LVL-2"));
    wait_until(Duration::from_secs(10), "a debug line", || sluice.log().contains("connection accepted"));

    sluice.signal("USR1");
    wait_until(Duration::from_secs(10), "trace", || sluice.log().contains("level=trace"));
    sluice.signal("USR1");
    wait_until(Duration::from_secs(10), "back to the configured level", || sluice.log().contains("level=info"));
    let lines_before = sluice.log().matches("connection accepted").count();
    assert_eq!(ack_field(&sluice.client().send(&adt("LVL-3")), "MSA", 1), "AA");
    assert_eq!(sluice.log().matches("connection accepted").count(), lines_before, "debug is off again");
}

/// A validator's reason quotes a patient's name, and a panicking plugin's
/// stderr may quote anything: the sender's AR/AE carries them, the log
/// only their length, unless `log_phi = true`.
#[test]
fn patient_data_stays_out_of_the_log_unless_log_phi() {
    let validators = "[[validate]]\nplugin = \"misbehave\"\nconfig = { mode = \"trap\", when = \"TRAP\" }\n\
                      [[validate]]\nplugin = \"misbehave\"\nconfig = { mode = \"reject\", text = \"PID-5 DOE JANE does not match\" }\n";
    for (log_phi, shown) in [(false, false), (true, true)] {
        let mut sluice = Sluice::prepare(&format!("log_phi = {log_phi}\n{validators}[connectors.archive]\n"));
        sluice.install_plugin("misbehave", Path::new(wasm::MISBEHAVE));
        sluice.launch();
        let mut client = sluice.client();
        let ack = client.send(&adt("PHI-1"));
        assert_eq!(ack_field(&ack, "MSA", 1), "AR");
        assert!(String::from_utf8_lossy(&ack).contains("DOE JANE"), "the sender is told why");
        let ack = client.send(&adt("TRAP-1"));
        assert_eq!(ack_field(&ack, "MSA", 1), "AE");
        assert!(String::from_utf8_lossy(&ack).contains("trap on purpose"), "the sender gets the panic message");
        wait_until(Duration::from_secs(10), "both logged", || sluice.log().contains("message not accepted") && sluice.log().contains("trapped"));
        let log = sluice.log();
        assert_eq!(log.contains("DOE JANE"), shown, "log_phi = {log_phi}:\n{log}");
        assert_eq!(log.contains("trap on purpose"), shown, "log_phi = {log_phi}:\n{log}");
        if !log_phi {
            assert!(log.contains("bytes withheld; log_phi = false"), "{log}");
        }
    }
}

#[test]
fn the_admin_endpoint_beyond_loopback_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(SLUICE)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("SLUICE_ADMIN__LISTEN", "0.0.0.0:0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("admin.listen") && stderr.contains("admin.token"), "{stderr}");
}
