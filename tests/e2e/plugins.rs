//! Plugins end to end: validators answer AR with ERR, routers pick outboxes,
//! misbehaving plugins cost one AE each and nothing else, instances keep no
//! state unless configured to, and the plugins folder hot-reloads under load.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{Sluice, ack_field, adt, sluice_command, wasm};

/// An ADT^A01 whose PID has no PID-8 (administrative sex).
fn adt_without_sex(control_id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|EHR|HOSP|LIS|LAB|20260101120000||ADT^A01^ADT_A01|{control_id}|P|2.5.1\rPID|1||PAT1^^^HOSP^MR||Doe^Jane\r").into_bytes()
}

fn oru(control_id: &str, sender: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|{sender}|LABFAC|EHR|HOSP|20260101120000||ORU^R01^ORU_R01|{control_id}|P|2.5.1\rPID|1||PAT1^^^HOSP^MR||Doe^Jane\r\
OBR|1||ORD1|GLU^Glucose\rOBX|1|NM|GLU^Glucose||5.4|mmol/L\rOBX|2|NM|K^Potassium||4.1~high|mmol/L\r"
    )
    .into_bytes()
}

fn start(config: &str, plugins: &[(&str, &str)]) -> Sluice {
    let mut sluice = Sluice::prepare(config);
    for (name, wasm) in plugins {
        sluice.install_plugin(name, Path::new(wasm));
    }
    sluice.launch();
    sluice
}

#[test]
fn a_validator_reject_is_an_ar_with_the_plugin_issue_in_err() {
    let sluice = start("[[validate]]\nplugin = \"require-fields\"\nconfig = { paths = [\"PID-3\", \"PID-8\"] }\n[connectors.lab]\n", &[]);
    let mut client = sluice.client();

    let ack = client.send(&adt_without_sex("NOSEX1"));
    assert_eq!(ack_field(&ack, "MSA", 1), "AR", "{}", String::from_utf8_lossy(&ack));
    assert_eq!(ack_field(&ack, "MSA", 2), "NOSEX1");
    assert!(ack_field(&ack, "MSA", 3).contains("PID-8"), "MSA-3 names the missing field: {}", String::from_utf8_lossy(&ack));
    assert_eq!(ack_field(&ack, "ERR", 2), "PID^1^8^1", "ERR-2 locates it");
    assert!(ack_field(&ack, "ERR", 3).starts_with("101^"), "ERR-3 is 101 required field missing");
    assert!(ack_field(&ack, "ERR", 7).contains("PID-8"));

    assert_eq!(ack_field(&client.send(&adt("GOOD1")), "MSA", 1), "AA");
    assert_eq!(sluice.outbox("lab"), ["GOOD1"], "the rejected message is not queued");
}

#[test]
fn routing_queues_a_message_only_in_the_outboxes_whose_router_takes_it() {
    let config = "[connectors.results]\nroute = \"match\"\nroute_config = { types = [\"ORU^R01\"], sending_application = [\"LAB*\"] }\n\
[connectors.adt]\nroute = \"match\"\nroute_config = { types = [\"ADT^*\"] }\n\
[connectors.nothing]\nroute = \"match\"\nroute_config = { types = [\"MDM^T02\"] }\n\
[connectors.archive]\n";
    let sluice = start(config, &[]);
    let mut client = sluice.client();
    for (id, message) in [("ORU1", oru("ORU1", "LABSYS")), ("ADT1", adt("ADT1")), ("ORU2", oru("ORU2", "RADSYS"))] {
        assert_eq!(ack_field(&client.send(&message), "MSA", 1), "AA", "{id}: no matching connector still answers AA");
    }
    assert_eq!(sluice.outbox("results"), ["ORU1"]);
    assert_eq!(sluice.outbox("adt"), ["ADT1"]);
    assert!(sluice.outbox("nothing").is_empty());
    assert_eq!(sluice.outbox("archive"), ["ORU1", "ADT1", "ORU2"], "a connector without a router takes everything");
}

#[test]
fn a_trap_an_endless_loop_and_a_memory_bomb_each_cost_one_ae_while_other_connections_get_aa() {
    let config = "[[validate]]\nplugin = \"misbehave\"\nconfig = { mode = \"trap\", when = \"TRAP\" }\n\
[[validate]]\nplugin = \"misbehave\"\nconfig = { mode = \"spin\", when = \"SPIN\" }\n\
[[validate]]\nplugin = \"misbehave\"\nconfig = { mode = \"memory-bomb\", when = \"BOMB\" }\n\
[plugins.misbehave]\ndeadline = \"300ms\"\nmemory_limit = \"8MiB\"\n[connectors.lab]\n";
    let sluice = start(config, &[("misbehave", wasm::MISBEHAVE)]);

    // A second connection sends good messages the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let good_acks = Arc::new(Mutex::new(Vec::new()));
    let background = {
        let (stop, good_acks, mut client) = (stop.clone(), good_acks.clone(), sluice.client());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let ack = client.send(&adt(&format!("GOOD{n}")));
                good_acks.lock().unwrap().push(ack_field(&ack, "MSA", 1));
            }
        })
    };

    let mut client = sluice.client();
    for (n, (id, expected)) in [("TRAP1", "trapped"), ("SPIN1", "deadline of 300ms"), ("BOMB1", "memory limit"), ("TRAP2", "trapped")].into_iter().enumerate() {
        let started = Instant::now();
        let ack = client.send(&adt(id));
        let text = String::from_utf8_lossy(&ack).into_owned();
        assert_eq!(ack_field(&ack, "MSA", 1), "AE", "{id}: {text}");
        assert!(ack_field(&ack, "MSA", 3).contains("plugin `misbehave`"), "{id}: MSA-3 names the plugin: {text}");
        assert!(ack_field(&ack, "ERR", 7).contains(expected), "{id}: ERR-7 says why ({expected}): {text}");
        assert!(started.elapsed() < Duration::from_secs(10), "{id}: the AE came after {:?}", started.elapsed());
        assert_eq!(ack_field(&client.send(&adt(&format!("AFTER{n}"))), "MSA", 1), "AA", "{id}: the same connection goes on");
    }
    stop.store(true, Ordering::Relaxed);
    background.join().unwrap();

    let good = good_acks.lock().unwrap();
    assert!(!good.is_empty());
    assert!(good.iter().all(|code| code == "AA"), "the other connection only ever got AA: {good:?}");
    assert!(!sluice.outbox("lab").iter().any(|id| ["TRAP1", "SPIN1", "BOMB1", "TRAP2"].contains(&id.as_str())));
    assert!(sluice.log().contains("misbehave"), "failures are logged with the plugin's name");
}

#[test]
fn instances_keep_no_state_between_messages_unless_configured_to() {
    let config = "[[validate]]\nplugin = \"fresh\"\nconfig = { mode = \"count\" }\n\
[[validate]]\nplugin = \"kept\"\nconfig = { mode = \"count\" }\n\
[plugins.kept]\nkeep_state = true\n[connectors.lab]\n";
    let sluice = start(config, &[("fresh", wasm::MISBEHAVE), ("kept", wasm::MISBEHAVE)]);
    let mut client = sluice.client();
    assert_eq!(ack_field(&client.send(&adt("C1")), "MSA", 1), "AA");
    // `fresh` sees its first call again; `kept` remembers the first message.
    let ack = client.send(&adt("C2"));
    assert_eq!(ack_field(&ack, "MSA", 1), "AR", "{}", String::from_utf8_lossy(&ack));
    assert!(ack_field(&ack, "MSA", 3).contains("call 2"), "{}", String::from_utf8_lossy(&ack));
}

#[test]
fn one_message_shares_an_instance_between_steps_and_the_next_message_gets_a_fresh_one() {
    // The same plugin as two steps: its second call within a message is its
    // instance's second call; the next message starts over.
    let config = "[[validate]]\nplugin = \"counter\"\nconfig = { mode = \"count\", when = \"TWICE\" }\n\
[[validate]]\nplugin = \"counter\"\nconfig = { mode = \"count\", when = \"TWICE\" }\n[connectors.lab]\n";
    let sluice = start(config, &[("counter", wasm::MISBEHAVE)]);
    let mut client = sluice.client();
    for id in ["TWICE1", "TWICE2"] {
        let ack = client.send(&adt(id));
        assert_eq!(ack_field(&ack, "MSA", 3), "call 2", "{id}: {}", String::from_utf8_lossy(&ack));
    }
}

#[test]
fn plugins_get_no_environment_and_no_files_unless_granted() {
    let granted_dir = tempfile::tempdir().unwrap();
    let file = granted_dir.path().join("lookup.csv");
    std::fs::write(&file, "12345,ok\n").unwrap();
    // Each validator acts only on messages whose control ID is its marker.
    let step = |plugin: &str, mode: &str, target: &str, marker: &str| {
        format!("[[validate]]\nplugin = \"{plugin}\"\nconfig = {{ mode = \"{mode}\", target = {target:?}, when = \"{marker}\" }}\n")
    };
    let file_path = file.display().to_string();
    let config = [
        step("denied", "read-file", &file_path, "READDENIED"),
        step("denied", "show-env", "PLUGIN_TEST_SECRET", "ENVDENIED"),
        step("granted", "read-file", &file_path, "READGRANTED"),
        step("granted", "show-env", "PLUGIN_TEST_SECRET", "ENVGRANTED"),
        format!("[plugins.granted]\nallow = {{ env = [\"PLUGIN_TEST_SECRET\"], read_dirs = [{:?}] }}\n", granted_dir.path().display().to_string()),
        "[connectors.lab]\n".to_string(),
    ]
    .concat();
    let mut sluice = Sluice::prepare(&config);
    sluice.install_plugin("denied", Path::new(wasm::MISBEHAVE));
    sluice.install_plugin("granted", Path::new(wasm::MISBEHAVE));
    sluice.launch_with_env(&[("PLUGIN_TEST_SECRET", "s3cret")]);
    let mut client = sluice.client();
    let mut answer = |id: &str| ack_field(&client.send(&adt(id)), "MSA", 3);
    assert!(answer("READDENIED").starts_with("cannot read"), "no directory is granted by default");
    assert_eq!(answer("ENVDENIED"), "env PLUGIN_TEST_SECRET=unset", "no environment is granted by default");
    assert_eq!(answer("READGRANTED"), "read 9 bytes");
    assert_eq!(answer("ENVGRANTED"), "env PLUGIN_TEST_SECRET=s3cret");
}

#[test]
fn the_example_plugin_reads_a_repeated_obx_field() {
    let config = "[[validate]]\nplugin = \"obx-numeric\"\n[connectors.lab]\n";
    let sluice = start(config, &[("obx-numeric", wasm::OBX_NUMERIC)]);
    let mut client = sluice.client();
    let ack = client.send(&oru("OBX1", "LAB"));
    assert_eq!(ack_field(&ack, "MSA", 1), "AR", "OBX[2]-5 repeats a non-number: {}", String::from_utf8_lossy(&ack));
    assert_eq!(ack_field(&ack, "ERR", 2), "OBX^2^5^1");
    let good = String::from_utf8(oru("OBX2", "LAB")).unwrap().replace("4.1~high", "4.1~4.3");
    assert_eq!(ack_field(&client.send(good.as_bytes()), "MSA", 1), "AA");
}

#[test]
fn a_config_naming_a_missing_or_mismatched_plugin_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (config, expected) in [
        ("[[validate]]\nplugin = \"nope\"\n", "`validate[0].plugin`: there is no plugin `nope`"),
        ("[[validate]]\nplugin = \"match\"\n", "it is a router plugin, but `validate[0].plugin` uses it as a validator"),
        ("[connectors.lab]\nroute = \"require-fields\"\n", "uses it as a router"),
    ] {
        let file = dir.path().join("sluice.toml");
        let data = dir.path().join("data");
        std::fs::write(&file, format!("listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nplugins_dir = {:?}\n{config}", data, dir.path().join("plugins"))).unwrap();
        let (status, _, stderr) = sluice_command(&["serve", "--config", file.to_str().unwrap()], dir.path());
        assert_eq!(status.code(), Some(2), "{config}: {stderr}");
        assert!(stderr.contains(expected), "{config}: expected {expected:?} in {stderr}");
    }
}

/// What one message of the hot-reload run got back.
struct Sent {
    kind: Kind,
    code: String,
    at: Instant,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    /// Passes every version of every rule.
    Good,
    /// Lacks PID-8: accepted until the stricter `gate` arrives.
    NoSex,
    /// Rejected by `other` until `other` is removed.
    Other,
}

#[test]
fn hot_reload_under_load_swaps_and_removes_plugins_without_losing_a_message() {
    let config = "[[validate]]\nplugin = \"gate\"\nconfig = { paths = [\"PID-8\"] }\n\
[[validate]]\nplugin = \"other\"\nconfig = { mode = \"reject\", when = \"OTHER\", text = \"other says no\" }\n[connectors.lab]\n";
    // `gate` starts as a validator that accepts everything.
    let sluice = start(config, &[("gate", wasm::MISBEHAVE), ("other", wasm::MISBEHAVE)]);

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(Vec::<Sent>::new()));
    let sender = {
        let (stop, sent, mut client) = (stop.clone(), sent.clone(), sluice.client());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (kind, message) = match n % 3 {
                    0 => (Kind::Good, adt(&format!("GOOD{n}"))),
                    1 => (Kind::NoSex, adt_without_sex(&format!("NOSEX{n}"))),
                    _ => (Kind::Other, adt(&format!("OTHER{n}"))),
                };
                let ack = client.send(&message);
                sent.lock().unwrap().push(Sent { kind, code: ack_field(&ack, "MSA", 1), at: Instant::now() });
            }
        })
    };
    let wait_for = |what: &str, done: &dyn Fn(&[Sent]) -> bool| {
        let start = Instant::now();
        while !done(&sent.lock().unwrap()) {
            assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for("traffic", &|s| s.len() >= 30);

    // Replace `gate` (by rename) with the stricter require-fields.
    sluice.install_plugin("gate", Path::new(wasm::REQUIRE_FIELDS));
    let swapped = Instant::now();
    wait_for("the stricter gate", &|s| s.iter().any(|m| m.kind == Kind::NoSex && m.code == "AR"));
    let mark = sent.lock().unwrap().len();
    wait_for("traffic after the swap", &|s| s.len() >= mark + 30);

    std::fs::remove_file(sluice.plugins_dir().join("other.wasm")).unwrap();
    let removed = Instant::now();
    let mark = sent.lock().unwrap().len();
    wait_for("other's removal", &|s| s[mark..].iter().any(|m| m.kind == Kind::Other && m.code == "AA"));
    let mark = sent.lock().unwrap().len();
    wait_for("traffic after the removal", &|s| s.len() >= mark + 30);

    // A corrupt file leaves the current gate serving.
    std::fs::write(sluice.plugins_dir().join("gate.wasm"), b"\0asm this is not a component").unwrap();
    let start = Instant::now();
    loop {
        let (ok, stdout, stderr) = sluice.cli(&["plugins", "list", "--json"]);
        assert!(ok, "{stderr}");
        let list: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
        let gate = list.iter().find(|p| p["name"] == "gate").expect("gate is listed");
        if gate["last_error"].is_string() {
            assert_eq!(gate["state"], "loaded", "the previous version keeps serving: {gate}");
            assert_eq!(gate["world"], "validator");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the corrupt file was never reported: {list:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mark = sent.lock().unwrap().len();
    wait_for("traffic after the corrupt file", &|s| s.len() >= mark + 30);
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();

    let sent = sent.lock().unwrap();
    assert!(sent.iter().all(|m| m.code == "AA" || m.code == "AR"), "no AE at any point: {:?}", sent.iter().map(|m| &m.code).collect::<Vec<_>>());
    assert!(sent.iter().filter(|m| m.kind == Kind::Good).all(|m| m.code == "AA"));
    // Each rule changes once, and stays changed.
    let codes = |kind: Kind| sent.iter().filter(|m| m.kind == kind).map(|m| m.code.as_str()).collect::<Vec<_>>();
    let nosex = codes(Kind::NoSex);
    let first_ar = nosex.iter().position(|c| *c == "AR").unwrap();
    assert!(nosex[..first_ar].iter().all(|c| *c == "AA") && nosex[first_ar..].iter().all(|c| *c == "AR"), "{nosex:?}");
    let other = codes(Kind::Other);
    let first_aa = other.iter().position(|c| *c == "AA").unwrap();
    assert!(other[..first_aa].iter().all(|c| *c == "AR") && other[first_aa..].iter().all(|c| *c == "AA"), "{other:?}");
    // The new behaviour shows within a second of each file landing.
    let first_strict = sent.iter().find(|m| m.kind == Kind::NoSex && m.code == "AR").unwrap().at;
    assert!(first_strict.duration_since(swapped) < Duration::from_secs(1), "swap took {:?}", first_strict.duration_since(swapped));
    let first_unblocked = sent.iter().find(|m| m.kind == Kind::Other && m.code == "AA").unwrap().at;
    assert!(first_unblocked.duration_since(removed) < Duration::from_secs(1), "removal took {:?}", first_unblocked.duration_since(removed));
    // Not one accepted message is missing from the outbox.
    let accepted = sent.iter().filter(|m| m.code == "AA").count();
    assert_eq!(sluice.outbox("lab").len(), accepted);
}
