//! Plugins in Python and JavaScript, built from `examples/` by their own
//! scripts, run end to end like Rust ones: the Python validator answers AR
//! with its text, the JavaScript router fills only its connector's outbox,
//! and both hot-reload.

use std::cell::Cell;
use std::time::Duration;

use crate::support::examples::{SHARED_CACHE, build};
use crate::support::{Sluice, ack_field, wait_until, wasm};

const RELOAD: Duration = Duration::from_secs(60);

/// An ADT^A01 whose PID-3 is `pid3`.
fn adt_with_id(control_id: &str, pid3: &str) -> Vec<u8> {
    format!("MSH|^~\\&|EHR|MAIN|LIS|LAB|20260101120000||ADT^A01^ADT_A01|{control_id}|P|2.5.1\rEVN|A01|20260101120000\rPID|1||{pid3}||Doe^Jane||19700101|F\r").into_bytes()
}

fn message_of_type(control_id: &str, code: &str, trigger: &str) -> Vec<u8> {
    format!("MSH|^~\\&|EHR|MAIN|LIS|LAB|20260101120000||{code}^{trigger}|{control_id}|P|2.5.1\rPID|1||42^^^HOSP^MR||Doe^Jane\r").into_bytes()
}

fn start(config: &str, plugins: &[(&str, &std::path::Path)]) -> Sluice {
    let mut sluice = Sluice::prepare(config);
    for (name, wasm) in plugins {
        sluice.install_plugin(name, wasm);
    }
    sluice.launch_with_env(&[("SLUICE_PLUGIN_CACHE_DIR", SHARED_CACHE)]);
    sluice
}

#[test]
fn the_python_validator_refuses_a_message_without_its_identifier_and_hot_reloads() {
    let python = build("python-validator");
    let config = "[[validate]]\nplugin = \"patient-id\"\nconfig = { authority = \"HOSP\" }\n[connectors.lab]\n";
    let sluice = start(config, &[("patient-id", &python)]);
    let mut client = sluice.client();

    let good = client.send(&adt_with_id("PYGOOD1", "999^^^OTHER^MR~12345^^^HOSP&1.2.3&ISO^MR"));
    assert_eq!(ack_field(&good, "MSA", 1), "AA", "the HOSP MRN in the second repetition: {}", String::from_utf8_lossy(&good));

    let bad = client.send(&adt_with_id("PYBAD1", "12345^^^OTHER^MR"));
    assert_eq!(ack_field(&bad, "MSA", 1), "AR", "{}", String::from_utf8_lossy(&bad));
    assert_eq!(ack_field(&bad, "MSA", 2), "PYBAD1");
    assert_eq!(ack_field(&bad, "MSA", 3), "PID-3 has no MR identifier from HOSP", "the Python plugin's text reaches the sender");
    assert!(ack_field(&bad, "ERR", 3).starts_with("101^"), "ERR-3 carries its code: {}", String::from_utf8_lossy(&bad));
    assert_eq!(ack_field(&bad, "ERR", 2), "PID^1^3^1", "ERR-2 locates PID-3");
    let wrong_type = client.send(&adt_with_id("PYBAD2", "12345^^^HOSP^PI"));
    assert_eq!(ack_field(&wrong_type, "MSA", 1), "AR", "an HOSP identifier of another type is not the MRN");
    let no_pid = client.send(b"MSH|^~\\&|EHR|MAIN|LIS|LAB|20260101120000||ADT^A01|PYBAD3|P|2.5.1\rEVN|A01|20260101120000\r");
    assert_eq!(ack_field(&no_pid, "MSA", 3), "the message has no PID segment");
    assert_eq!(sluice.outbox("lab"), ["PYGOOD1"], "only the accepted message is queued");

    // Removed: the step is skipped, so the OTHER identifier passes...
    std::fs::remove_file(sluice.plugins_dir().join("patient-id.wasm")).unwrap();
    let n = Cell::new(0);
    let mut code_for_other = || {
        n.set(n.get() + 1);
        ack_field(&client.send(&adt_with_id(&format!("PYRELOAD{}", n.get()), "12345^^^OTHER^MR")), "MSA", 1)
    };
    wait_until(RELOAD, "the Python validator to be unloaded", || code_for_other() == "AA");
    // ...and put back, it refuses it again.
    sluice.install_plugin("patient-id", &python);
    wait_until(RELOAD, "the Python validator to be loaded again", || code_for_other() == "AR");
}

#[test]
fn the_python_validator_and_the_rust_template_answer_alike() {
    let python = build("python-validator");
    let config = "[[validate]]\nplugin = \"patient-id\"\nconfig = { authority = \"HOSP\", type = \"MR\" }\n[connectors.lab]\n";
    let servers = [start(config, &[("patient-id", &python)]), start(config, &[("patient-id", std::path::Path::new(wasm::PATIENT_ID))])];
    let mut clients = servers.each_ref().map(Sluice::client);
    let cases = ["12345^^^HOSP^MR", "1^^^X^MR~2^^^HOSP&1.2&ISO^MR", "12345^^^HOSP^PI", "^^^HOSP^MR", "", "12345^^^hosp^MR"];
    let mut codes = Vec::new();
    for (i, pid3) in cases.iter().enumerate() {
        let id = format!("SAME{i}");
        let [python_ack, rust_ack] = clients.each_mut().map(|client| client.send(&adt_with_id(&id, pid3)));
        // Everything but MSH (its timestamp and control ID differ).
        let body = |ack: &[u8]| String::from_utf8_lossy(ack).split('\r').skip(1).collect::<Vec<_>>().join("\r");
        assert_eq!(body(&python_ack), body(&rust_ack), "PID-3 `{pid3}`");
        codes.push(ack_field(&rust_ack, "MSA", 1));
    }
    assert_eq!(codes, ["AA", "AA", "AR", "AR", "AR", "AR"], "authority and type compare exactly");
}

#[test]
fn the_javascript_router_sends_only_its_message_types_to_its_connector_and_hot_reloads() {
    let javascript = build("js-router");
    let config = "[connectors.adt]\nroute = \"message-types\"\nroute_config = { types = [\"ADT^A0?\", \"MDM\"] }\n[connectors.archive]\n";
    let sluice = start(config, &[("message-types", &javascript)]);
    let mut client = sluice.client();

    for (id, code, trigger) in [("JS1", "ADT", "A01"), ("JS2", "ORU", "R01"), ("JS3", "ADT", "A08"), ("JS4", "ADT", "A11"), ("JS5", "MDM", "T02"), ("JS6", "ADT", "A0")] {
        let ack = client.send(&message_of_type(id, code, trigger));
        assert_eq!(ack_field(&ack, "MSA", 1), "AA", "{id}: {}", String::from_utf8_lossy(&ack));
    }
    assert_eq!(sluice.outbox("adt"), ["JS1", "JS3", "JS5"], "ADT^A0? and any MDM; not ORU, A11, or A0 (`?` is one character)");
    assert_eq!(sluice.outbox("archive").len(), 6, "a connector without a router takes everything");

    // Removed: the connector takes nothing until its router is back.
    std::fs::remove_file(sluice.plugins_dir().join("message-types.wasm")).unwrap();
    let n = Cell::new(0);
    let mut send_adt = || {
        n.set(n.get() + 1);
        let id = format!("JSRELOAD{}", n.get());
        assert_eq!(ack_field(&client.send(&message_of_type(&id, "ADT", "A01")), "MSA", 1), "AA");
        id
    };
    wait_until(RELOAD, "the JavaScript router to be unloaded", || {
        let id = send_adt();
        !sluice.outbox("adt").contains(&id)
    });
    sluice.install_plugin("message-types", &javascript);
    wait_until(RELOAD, "the JavaScript router to be loaded again", || {
        let id = send_adt();
        sluice.outbox("adt").contains(&id)
    });
}

#[test]
fn the_javascript_router_answers_ae_naming_a_settings_mistake() {
    let javascript = build("js-router");
    let config = "[connectors.adt]\nroute = \"message-types\"\nroute_config = { typs = [\"ADT\"] }\n";
    let sluice = start(config, &[("message-types", &javascript)]);
    let ack = sluice.client().send(&message_of_type("JSTYPO", "ADT", "A01"));
    assert_eq!(ack_field(&ack, "MSA", 1), "AE", "a router error is not a refusal of the message: {}", String::from_utf8_lossy(&ack));
    assert!(ack_field(&ack, "MSA", 3).contains("unknown setting `typs`"), "{}", String::from_utf8_lossy(&ack));
    assert!(ack_field(&ack, "ERR", 3).starts_with("207^"), "{}", String::from_utf8_lossy(&ack));
    assert!(sluice.outbox("adt").is_empty());
}
