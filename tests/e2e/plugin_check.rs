//! `sluice plugins check FILE.wasm`: a valid plugin (Rust and Python), a
//! plugin for the wrong world, a connector whose grants are missing, and
//! files that are not components. No server runs.

use std::path::Path;

use crate::support::examples::{SHARED_CACHE, build};
use crate::support::{sluice_command, wasm};

/// Runs `plugins check` with `config` (TOML) in a fresh folder; the exit
/// status and the JSON report.
fn check(file: &Path, config: &str, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("sluice.toml");
    std::fs::write(&config_file, format!("plugin_cache_dir = {SHARED_CACHE:?}\n{config}")).unwrap();
    let mut args = vec!["plugins", "check", file.to_str().unwrap(), "--config", config_file.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let (status, stdout, stderr) = sluice_command(&args, dir.path());
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("no JSON report ({e}): {stdout}{stderr}"));
    (status.code(), report)
}

fn problems(report: &serde_json::Value) -> String {
    report["problems"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect::<Vec<_>>().join("; ")
}

#[test]
fn a_valid_validator_is_described_and_called_with_its_configured_settings() {
    let config = "[[validate]]\nplugin = \"require-fields\"\nconfig = { paths = [\"PID-3\", \"ZZZ-1\"] }\n";
    let (code, report) = check(Path::new(wasm::REQUIRE_FIELDS), config, &["--name", "require-fields"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["world"], "validator");
    assert_eq!(report["wit_version"], "0.1.0");
    assert_eq!(report["used_by"], serde_json::json!(["validate[0].plugin"]));
    let imports: Vec<&str> = report["imports"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert!(imports.contains(&"sluice:plugin/message@0.1.0"), "{imports:?}");
    // Called with the configuration's settings on the generated ADT^A01,
    // which has no ZZZ segment.
    let call = &report["call"];
    assert_eq!(call["settings"], r#"{"paths":["PID-3","ZZZ-1"]}"#);
    assert!(call["answer"].as_str().unwrap().starts_with("reject (AR): 101"), "{call}");
    assert!(call["call_us"].as_f64().unwrap() > 0.0 && call["peak_memory"].as_u64().unwrap() > 0, "{call}");

    // The text form says the same for a person.
    let dir = tempfile::tempdir().unwrap();
    let (status, stdout, _) = sluice_command(&["plugins", "check", wasm::REQUIRE_FIELDS], dir.path());
    assert!(status.success());
    assert!(stdout.contains("validator world of sluice:plugin@0.1.0"), "{stdout}");
    assert!(stdout.contains("result    OK"), "{stdout}");
}

#[test]
fn the_python_validator_checks_as_a_runnable_validator_with_an_empty_sandbox() {
    let python = build("python-validator");
    let config = "[[validate]]\nplugin = \"patient-id\"\nconfig = { authority = \"OTHER\" }\n";
    let (code, report) = check(&python, config, &["--name", "patient-id"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["world"], "validator");
    assert_eq!(report["compile"]["from_cache"], true, "precompiled by the build step: {}", report["compile"]);
    let grant = |name: &str| {
        let import = report["imports"].as_array().unwrap().iter().find(|i| i["name"].as_str().unwrap().starts_with(name));
        import.unwrap_or_else(|| panic!("no {name} import: {report}"))["grant"].as_str().unwrap().to_string()
    };
    assert!(grant("wasi:filesystem/preopens").starts_with("refused"), "CPython imports files; nothing is granted");
    assert!(grant("wasi:sockets/tcp").starts_with("no network"));
    assert_eq!(report["call"]["answer"], "reject (AR): 101 \"PID-3 has no MR identifier from OTHER\" at PID-3");
}

#[test]
fn a_plugin_used_in_the_wrong_world_cannot_run() {
    let config = "[connectors.lab]\nroute = \"gate\"\n";
    let (code, report) = check(Path::new(wasm::REQUIRE_FIELDS), config, &["--name", "gate"]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["world"], "validator");
    assert_eq!(problems(&report), "`connectors.lab.route` uses `gate` as a router, but this file is a validator plugin");
    assert!(report["call"].is_null(), "nothing is called");
}

#[test]
fn a_connector_is_not_called_unless_asked_and_its_missing_grants_are_named() {
    let (code, report) = check(Path::new(wasm::HTTP), "[connectors.ehr]\nplugin = \"http\"\nconfig = { url = \"http://127.0.0.1:9/\" }\n", &["--name", "http"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["world"], "connector");
    assert!(report["call"].is_null(), "a connector's call would deliver for real");
    let http = report["imports"].as_array().unwrap().iter().find(|i| i["name"].as_str().unwrap().starts_with("wasi:http/outgoing-handler")).unwrap();
    assert_eq!(http["grant"], "refused: nothing granted in allow.http");

    let granted = "[connectors.ehr]\nplugin = \"http\"\n[plugins.http]\nallow.http = [\"ehr.example:8443\"]\n";
    let (_, report) = check(Path::new(wasm::HTTP), granted, &["--name", "http"]);
    let http = report["imports"].as_array().unwrap().iter().find(|i| i["name"].as_str().unwrap().starts_with("wasi:http/outgoing-handler")).unwrap();
    assert_eq!(http["grant"], "allow.http: ehr.example:8443");
}

#[test]
fn files_that_are_not_components_are_named_for_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    for (bytes, expected) in [
        (&b"MSH|^~\\&|not a plugin"[..], "this is not WebAssembly"),
        (&b"\0asm\x01\0\0\0"[..], "this is a core WebAssembly module, not a component"),
        (&b"\0asm\x0d\0\x01\0garbage"[..], "not a valid WebAssembly component"),
    ] {
        let file = dir.path().join("broken.wasm");
        std::fs::write(&file, bytes).unwrap();
        let (code, report) = check(&file, "", &[]);
        assert_eq!(code, Some(1), "{report}");
        assert!(problems(&report).contains(expected), "expected {expected:?}: {report}");
        assert!(report["world"].is_null());
    }
    let (status, _, stderr) = sluice_command(&["plugins", "check", "/nonexistent/plugin.wasm"], dir.path());
    assert_eq!(status.code(), Some(2), "a missing file is a usage error: {stderr}");
    assert!(stderr.contains("cannot read /nonexistent/plugin.wasm"), "{stderr}");
}
