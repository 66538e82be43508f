//! The catalog's load, reload and fallback rules, with real components
//! (built by host/build.rs) and a real engine.

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::config::{Config, PluginUse};

fn config(dir: &Path) -> Config {
    Config {
        data_dir: dir.join("data"),
        plugins_dir: dir.join("plugins"),
        validate: vec![PluginUse { plugin: "gate".into(), config: Default::default() }],
        ..Config::default()
    }
}

fn install(dir: &Path, name: &str, wasm: &str) -> std::path::PathBuf {
    let file = dir.join("plugins").join(format!("{name}.wasm"));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::copy(wasm, &file).unwrap();
    file
}

fn status(catalog: &Catalog, name: &str) -> PluginStatus {
    catalog.statuses().into_iter().find(|s| s.name == name).unwrap()
}

#[test]
fn a_failed_reload_keeps_the_previous_version_serving_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let gate = install(dir.path(), "gate", env!("PLUGIN_WASM_MISBEHAVE"));
    let catalog = Catalog::open(Arc::new(config(dir.path()))).unwrap();
    let loaded = catalog.snapshot()["gate"].hash.clone();
    assert_eq!(catalog.snapshot()["gate"].world, World::Validator);

    std::fs::write(&gate, b"not wasm at all").unwrap();
    catalog.reload(&gate);
    assert_eq!(catalog.snapshot()["gate"].hash, loaded, "the old version still serves");
    let after_corrupt = status(&catalog, "gate");
    assert_eq!(after_corrupt.state, LoadState::Loaded);
    assert!(after_corrupt.last_error.unwrap().contains("not a valid WebAssembly component"));

    // A router cannot replace a validator the configuration uses.
    std::fs::copy(env!("PLUGIN_WASM_MATCH"), &gate).unwrap();
    catalog.reload(&gate);
    assert_eq!(catalog.snapshot()["gate"].hash, loaded);
    let err = status(&catalog, "gate").last_error.unwrap();
    assert!(err.contains("it is a router plugin, but `validate[0].plugin` uses it as a validator"), "{err}");

    // A good new version replaces it and clears the error.
    std::fs::copy(env!("PLUGIN_WASM_REQUIRE_FIELDS"), &gate).unwrap();
    catalog.reload(&gate);
    assert_ne!(catalog.snapshot()["gate"].hash, loaded);
    assert_eq!(status(&catalog, "gate").last_error, None);
}

#[test]
fn removing_a_file_unloads_it_or_brings_back_the_built_in() {
    let dir = tempfile::tempdir().unwrap();
    let gate = install(dir.path(), "gate", env!("PLUGIN_WASM_MISBEHAVE"));
    let shadow = install(dir.path(), "match", env!("PLUGIN_WASM_MISBEHAVE"));
    let catalog = Catalog::open(Arc::new(config(dir.path()))).unwrap();
    assert_eq!(catalog.snapshot()["match"].world, World::Validator, "a file shadows the built-in of the same name");

    std::fs::remove_file(&shadow).unwrap();
    catalog.reload(&shadow);
    assert_eq!(catalog.snapshot()["match"].origin, Origin::Builtin);
    assert_eq!(catalog.snapshot()["match"].world, World::Router);

    std::fs::remove_file(&gate).unwrap();
    catalog.reload(&gate);
    assert!(!catalog.snapshot().contains_key("gate"));
    assert_eq!(status(&catalog, "gate").state, LoadState::Removed);
}

#[test]
fn compiled_plugins_are_cached_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "gate", env!("PLUGIN_WASM_MISBEHAVE"));
    let first = Catalog::open(Arc::new(config(dir.path()))).unwrap();
    let cached = std::fs::read_dir(dir.path().join("data/plugin-cache")).unwrap().count();
    assert_eq!(cached, 6, "gate and the five built-ins");
    drop(first);
    let second = Catalog::open(Arc::new(config(dir.path()))).unwrap();
    assert_eq!(std::fs::read_dir(dir.path().join("data/plugin-cache")).unwrap().count(), 6, "reused, not recompiled");
    assert_eq!(second.snapshot().len(), 6);
}

#[test]
fn a_plugin_name_is_a_wasm_file_stem() {
    assert_eq!(plugin_name(Path::new("/p/require-fields.wasm")).as_deref(), Some("require-fields"));
    for other in ["/p/readme.md", "/p/.gate.wasm", "/p/gate.wasm.part", "/p/gate"] {
        assert_eq!(plugin_name(Path::new(other)), None, "{other}");
    }
}


#[test]
fn a_file_may_take_a_built_in_name_for_another_role() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "match", env!("PLUGIN_WASM_MISBEHAVE"));
    let mut config = config(dir.path());
    config.validate[0].plugin = "match".into();
    let catalog = Catalog::open(Arc::new(config)).unwrap();
    assert_eq!(catalog.snapshot()["match"].world, World::Validator);
    assert_eq!(status(&catalog, "match").state, LoadState::Loaded);
}
