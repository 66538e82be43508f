//! Turning bytes into a [`Plugin`]: compile (or load the precompiled copy
//! from the cache), find the world from the component's exports, and
//! type-check it against that world by building its `InstancePre`. Compiling
//! takes milliseconds to seconds, so callers run this off the message path.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use wasmtime::component::Component;

use super::bindings::{connector, router, validator};
use super::engine::PluginEngine;
use super::instance::{Pre, check_net_grants, wasi_grants};
use super::loaded::{Origin, Plugin, World};
use crate::config::PluginPolicy;

/// The WIT package every plugin world belongs to.
const PACKAGE: &str = "sluice:plugin/";

pub struct Loader {
    engine: PluginEngine,
    /// Precompiled components, keyed by file hash and engine compatibility.
    cache_dir: Option<PathBuf>,
}

impl Loader {
    pub fn new(engine: PluginEngine, cache_dir: Option<PathBuf>) -> Loader {
        if let Some(dir) = &cache_dir
            && let Err(err) = std::fs::create_dir_all(dir)
        {
            tracing::warn!(dir = %dir.display(), "plugin cache unavailable, plugins are compiled at every start: {err}");
        }
        Loader { engine, cache_dir }
    }

    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    pub fn load(&self, name: &str, bytes: &[u8], origin: Origin, policy: PluginPolicy) -> anyhow::Result<Plugin> {
        let hash = content_hash(bytes);
        let Compiled { component, .. } = self.compile(bytes, &hash)?;
        let Typed { world, wit_version, pre } = self.type_check(&component)?;
        wasi_grants(&policy).map_err(anyhow::Error::from).context("a granted directory cannot be opened")?;
        check_net_grants(&policy)?;
        let kept = policy.keep_state.then(|| tokio::sync::Mutex::new(None));
        Ok(Plugin { name: Arc::from(name), world, wit_version, hash, origin, policy, pre, engine: self.engine.clone(), kept })
    }

    /// Finds the component's world from its exports and checks it against
    /// that world and the host's imports.
    pub(super) fn type_check(&self, component: &Component) -> anyhow::Result<Typed> {
        let engine = &self.engine.engine;
        let ty = component.component_type();
        let world = world_of(ty.exports(engine).map(|(name, _)| name))?;
        let wit_version = wit_version(ty.imports(engine).map(|(name, _)| name));
        let instance_pre = self.engine.linker.instantiate_pre(component).map_err(anyhow::Error::from).context("it needs imports Sluice does not provide")?;
        let pre = match world {
            World::Validator => validator::ValidatorPre::new(instance_pre).map(Pre::Validator),
            World::Router => router::RouterPre::new(instance_pre).map(Pre::Router),
            World::Connector => connector::ConnectorPre::new(instance_pre).map(Pre::Connector),
        }
        .map_err(anyhow::Error::from)
        .with_context(|| format!("it does not match the {world} world of sluice:plugin"))?;
        Ok(Typed { world, wit_version, pre })
    }

    /// Compiles `bytes`, or loads them precompiled from the cache.
    pub(super) fn compile(&self, bytes: &[u8], hash: &str) -> anyhow::Result<Compiled> {
        let engine = &self.engine.engine;
        let Some(dir) = &self.cache_dir else {
            let component = Component::new(engine, bytes).map_err(anyhow::Error::from).context("not a valid WebAssembly component")?;
            return Ok(Compiled { component, from_cache: false });
        };
        let cached = dir.join(format!("{hash}-{:016x}.cwasm", self.compatibility()));
        if cached.exists() {
            // SAFETY: the cache directory is written only by this engine
            // (below), and the key includes the engine's compatibility hash.
            match unsafe { Component::deserialize_file(engine, &cached) } {
                Ok(component) => return Ok(Compiled { component, from_cache: true }),
                Err(err) => tracing::warn!(file = %cached.display(), "ignoring unreadable precompiled plugin: {err}"),
            }
        }
        let component = Component::new(engine, bytes).map_err(anyhow::Error::from).context("not a valid WebAssembly component")?;
        if let Err(err) = component.serialize().map_err(anyhow::Error::from).and_then(|code| write_atomically(&cached, &code)) {
            tracing::warn!(file = %cached.display(), "cannot cache the compiled plugin: {err:#}");
        }
        Ok(Compiled { component, from_cache: false })
    }

    /// Changes whenever compiled code from another wasmtime build or
    /// configuration could not be loaded by this one.
    fn compatibility(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine.engine.precompile_compatibility_hash().hash(&mut hasher);
        hasher.finish()
    }
}

/// A compiled component, and whether it came from the cache.
pub(super) struct Compiled {
    pub component: Component,
    pub from_cache: bool,
}

/// A component checked against its world.
pub(super) struct Typed {
    pub world: World,
    /// The `sluice:plugin` version it imports, `unknown` when it imports none.
    pub wit_version: String,
    pub pre: Pre,
}

/// The version of the `sluice:plugin` package among a component's imports.
pub(super) fn wit_version<'a>(mut imports: impl Iterator<Item = &'a str>) -> String {
    imports.find_map(|import| import.strip_prefix(PACKAGE)?.split_once('@').map(|(_, v)| v.to_string())).unwrap_or_else(|| "unknown".into())
}

/// What identifies a plugin's bytes: xxh3-128, hex (the cache key, and the
/// hash `sluice plugins list` shows).
pub fn content_hash(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

/// The world a component implements, from the function it exports.
pub(super) fn world_of<'a>(exports: impl Iterator<Item = &'a str>) -> anyhow::Result<World> {
    let exports: Vec<&str> = exports.collect();
    let worlds: Vec<World> = exports
        .iter()
        .filter_map(|name| match *name {
            "validate" => Some(World::Validator),
            "route" => Some(World::Router),
            "deliver" => Some(World::Connector),
            _ => None,
        })
        .collect();
    match worlds[..] {
        [world] => Ok(world),
        [] => bail!("it exports none of `validate`, `route` or `deliver` (it exports: {})", exports.join(", ")),
        _ => bail!("it exports more than one of `validate`, `route` and `deliver`"),
    }
}

/// Writes through a temporary file so a reader never sees half a file, even
/// with two engines sharing a cache.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path.parent().context("cache path has no folder")?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path)?;
    Ok(())
}
