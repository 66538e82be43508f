//! Compiles the stock plugins (built into the binary) and the test and
//! example plugins (used by the end-to-end tests) for wasm32-wasip2, so
//! `cargo build` and `cargo test` need no separate step. A nested cargo with
//! its own target directory, next to this build's.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (package, plugin name): built into the engine.
const STOCK: &[(&str, &str)] = &[
    ("plugin-require-fields", "require-fields"),
    ("plugin-match", "match"),
    ("plugin-http", "http"),
    ("plugin-mllp", "mllp"),
    ("plugin-file", "file"),
];
/// (package, plugin name): for tests and examples.
const EXTRA: &[(&str, &str)] = &[("fixture-misbehave", "misbehave"), ("example-obx-numeric", "obx-numeric"), ("example-patient-id", "patient-id")];

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "wasm-plugin";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host/ is inside the workspace").to_path_buf();
    for watched in ["wit", "sdk", "plugins", "tests/plugins", "examples/obx-plugin", "examples/plugin-template", "Cargo.lock"] {
        println!("cargo::rerun-if-changed={}", root.join(watched).display());
    }
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = wasm_target_dir(&out_dir);

    let mut cargo = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo.current_dir(&root).args(["build", "--locked", "--target", TARGET, "--profile", PROFILE, "--target-dir"]).arg(&target_dir);
    for (package, _) in STOCK.iter().chain(EXTRA) {
        cargo.args(["-p", package]);
    }
    // Flags meant for the host build must not leak into the Wasm one.
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR"] {
        cargo.env_remove(var);
    }
    let status = cargo.status().expect("cannot run cargo to build the plugins");
    if !status.success() {
        panic!("building the plugins for {TARGET} failed (see above); the target comes with rust-toolchain.toml, or: rustup target add {TARGET}");
    }

    let built = target_dir.join(TARGET).join(PROFILE);
    for (package, name) in STOCK {
        let wasm = built.join(format!("{}.wasm", package.replace('-', "_")));
        std::fs::copy(&wasm, out_dir.join(format!("{name}.wasm"))).unwrap_or_else(|err| panic!("{}: {err}", wasm.display()));
    }
    // Every plugin's path, for tests: `env!("PLUGIN_WASM_<NAME>")`.
    for (package, name) in STOCK.iter().chain(EXTRA) {
        let wasm = built.join(format!("{}.wasm", package.replace('-', "_")));
        println!("cargo::rustc-env=PLUGIN_WASM_{}={}", name.replace('-', "_").to_uppercase(), wasm.display());
    }
}

/// `<target>/wasm-plugins`, beside the profile folders of this build.
fn wasm_target_dir(out_dir: &Path) -> PathBuf {
    // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out.
    out_dir.ancestors().nth(4).unwrap_or(out_dir).join("wasm-plugins")
}
