//! Configuration as a user meets it: defaults with no file, layers, and a
//! clear refusal of bad keys and values.

use crate::support::sluice_command;

#[test]
fn defaults_work_without_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let (status, stdout, stderr) = sluice_command(&["config"], dir.path());
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("listen = \"0.0.0.0:2575\""), "{stdout}");
    assert!(stdout.contains("data_dir = \"./data\""), "{stdout}");
    assert!(stdout.contains("max_frame_size = \"2MiB\""), "{stdout}");
}

#[test]
fn files_environment_and_flags_layer_in_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), "idle_timeout = \"5s\"\nlisten = \"127.0.0.1:7000\"").unwrap();
    std::fs::write(dir.path().join("b.toml"), "listen = \"127.0.0.1:7001\"").unwrap();
    let out = std::process::Command::new(crate::support::SLUICE)
        .args(["config", "-c", "a.toml", "-c", "b.toml", "--data-dir", "/flag"])
        .env("SLUICE_FRAME_TIMEOUT", "9s")
        .env("SLUICE_DATA_DIR", "/env")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("listen = \"127.0.0.1:7001\""), "{stdout}");
    assert!(stdout.contains("idle_timeout = \"5s\""), "{stdout}");
    assert!(stdout.contains("frame_timeout = \"9s\""), "{stdout}");
    assert!(stdout.contains("data_dir = \"/flag\""), "{stdout}");
}

#[test]
fn serve_refuses_a_bad_config_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "idle_timeout = \"forever\"").unwrap();
    let (status, _, stderr) = sluice_command(&["serve", "-c", "bad.toml"], dir.path());
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("idle_timeout"), "{stderr}");
    std::fs::write(dir.path().join("typo.toml"), "max_conections = 5").unwrap();
    let (status, _, stderr) = sluice_command(&["serve", "-c", "typo.toml"], dir.path());
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("max_conections"), "{stderr}");
    assert!(!dir.path().join("data").exists(), "nothing is created for a refused config");
}

#[test]
fn outbox_stats_explains_a_missing_store() {
    let dir = tempfile::tempdir().unwrap();
    let (status, _, stderr) = sluice_command(&["outbox", "stats", "--data-dir", "nowhere"], dir.path());
    assert!(!status.success());
    assert!(stderr.contains("no Sluice store in nowhere"), "{stderr}");
}
