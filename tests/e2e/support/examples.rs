//! The Python and JavaScript example plugins, built by their own scripts
//! (which install componentize-py and componentize-js on first use) once
//! per test run, and precompiled into a plugin cache the test servers
//! share, so each server starts in milliseconds rather than compiling
//! tens of megabytes of Wasm again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use super::SLUICE;

/// The plugin cache every test server that runs an example shares
/// (`SLUICE_PLUGIN_CACHE_DIR`).
pub const SHARED_CACHE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/e2e-plugin-cache");

/// Where the builds land.
const OUT: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/examples");

/// `examples/<example>` built to a component, its path. Built once per run.
pub fn build(example: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(path) = built.get(example) {
        return path.clone();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(example).join("build.sh");
    let out = Path::new(OUT).join(format!("{example}.wasm"));
    let status = Command::new("bash").arg(&script).arg(&out).status().unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(status.success(), "{} failed ({status}); it needs python3 with venv (Python example) or node and npm (JavaScript example)", script.display());
    precompile(&out);
    built.insert(example.to_string(), out.clone());
    out
}

/// Compiles the plugin into the shared cache with `sluice plugins check`,
/// which also proves it type-checks.
fn precompile(wasm: &Path) {
    std::fs::create_dir_all(SHARED_CACHE).unwrap();
    let output = Command::new(SLUICE)
        .args(["plugins", "check", "--json"])
        .arg(wasm)
        .env("SLUICE_PLUGIN_CACHE_DIR", SHARED_CACHE)
        .output()
        .expect("run sluice plugins check");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("`plugins check {}` printed no JSON ({e}): {}", wasm.display(), String::from_utf8_lossy(&output.stderr)));
    assert!(report["compile"].is_object(), "{} did not compile: {report}", wasm.display());
}
