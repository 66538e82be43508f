//! The plugins the engine runs: the stock ones built in, then every `.wasm`
//! in the plugins folder (a file shadows a built-in of the same name). The
//! current set is an immutable snapshot swapped atomically on reload; each
//! plugin's load state and last error are kept for `sluice plugins list`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::builtin::BUILTIN;
use super::engine::PluginEngine;
use super::loaded::{Origin, Plugin, World};
use super::loader::{Loader, content_hash};
use crate::config::{Config, PluginPolicy};

pub type PluginSet = HashMap<String, Arc<Plugin>>;

type Required = BTreeMap<String, (World, String)>;

/// What `sluice plugins list` shows for one plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginStatus {
    pub name: String,
    /// `validator`, `router` or `connector`; empty when it never loaded.
    pub world: String,
    pub wit_version: String,
    pub hash: String,
    /// `built-in` or the file's path.
    pub origin: String,
    pub state: LoadState,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadState {
    /// Serving.
    Loaded,
    /// The last load failed; the previous version, if any, keeps serving.
    Failed,
    /// The file was removed and there is no built-in to fall back to.
    Removed,
}

/// Name of the status file in the data directory.
pub const STATUS_FILE: &str = "plugins.json";

pub struct Catalog {
    loader: Loader,
    dir: PathBuf,
    config: RwLock<Arc<Config>>,
    /// Which world each configured use needs, with the config key naming it.
    required: RwLock<Required>,
    /// The largest `memory_limit` the engine's instance pool was sized for.
    max_memory: u64,
    current: RwLock<Arc<PluginSet>>,
    status: Mutex<BTreeMap<String, PluginStatus>>,
    status_file: PathBuf,
}

impl Catalog {
    /// Loads the built-in plugins and the plugins folder, and checks that
    /// every plugin the configuration names exists in the right world.
    pub fn open(config: Arc<Config>) -> anyhow::Result<Catalog> {
        let max_memory = config.plugins.values().map(|p| p.memory_limit.0).chain([PluginPolicy::default().memory_limit.0]).max().unwrap_or_default();
        let outbound_tls = crate::tls::OutboundTlsSet::from_config(&config.outbound_tls)?;
        let engine = PluginEngine::new(max_memory as usize, outbound_tls).map_err(anyhow::Error::from).context("cannot start the plugin engine")?;
        let loader = Loader::new(engine, Some(config.plugin_cache()));
        let catalog = Catalog {
            loader,
            dir: config.plugins_dir.clone(),
            required: RwLock::new(required_worlds(&config)?),
            max_memory,
            current: RwLock::new(Arc::default()),
            status: Mutex::default(),
            status_file: config.data_dir.join(STATUS_FILE),
            config: RwLock::new(config),
        };
        // A built-in that does not fit the configuration (its name used in
        // another role) may be shadowed by a file; check_required judges.
        for (name, _) in BUILTIN {
            if let Err(err) = catalog.load_builtin(name) {
                catalog.record_failure(name, "built-in", format!("{err:#}"));
            }
        }
        for file in catalog.wasm_files() {
            catalog.reload(&file);
        }
        catalog.check_required(&read(&catalog.required))?;
        catalog.write_status();
        Ok(catalog)
    }

    /// Takes a reloaded configuration: every plugin it names must be loaded
    /// in the right world (else it is refused, naming the key, and nothing
    /// changes); plugins whose sandbox policy changed are loaded again with
    /// it. Blocks while they compile (from the cache, usually).
    pub fn reconfigure(&self, config: Arc<Config>) -> anyhow::Result<Vec<String>> {
        let required = required_worlds(&config)?;
        for (name, policy) in &config.plugins {
            if policy.memory_limit.0 > self.max_memory {
                bail!(
                    "configuration key `plugins.{name}.memory_limit`: {} bytes is above the {} the engine started with; a restart raises it",
                    policy.memory_limit.0,
                    self.max_memory
                );
            }
        }
        self.check_required(&required)?;
        let set = self.snapshot();
        for (name, (world, key)) in &required {
            if let Some(plugin) = set.get(name)
                && plugin.world != *world
            {
                bail!("configuration key `{key}`: `{name}` is a {} plugin, not a {world}", plugin.world);
            }
        }
        let old = std::mem::replace(&mut *self.config.write().unwrap_or_else(PoisonError::into_inner), config.clone());
        *self.required.write().unwrap_or_else(PoisonError::into_inner) = required;
        let mut changes = Vec::new();
        for (name, plugin) in set.iter().filter(|(name, _)| old.plugin_policy(name) != config.plugin_policy(name)) {
            match &plugin.origin {
                Origin::Builtin => {
                    if let Err(err) = self.load_builtin(name) {
                        self.record_failure(name, "built-in", format!("{err:#}"));
                    }
                }
                Origin::File(file) => match std::fs::read(file) {
                    Ok(bytes) => self.load_file(name, file, &bytes, true),
                    Err(err) => self.record_failure(name, &file.display().to_string(), format!("cannot read {}: {err}", file.display())),
                },
            }
            changes.push(format!("plugin `{name}` loaded again with its new sandbox policy"));
        }
        self.write_status();
        Ok(changes)
    }

    pub fn engine(&self) -> &PluginEngine {
        self.loader.engine()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The plugins as they are now; a message uses one snapshot throughout.
    pub fn snapshot(&self) -> Arc<PluginSet> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn statuses(&self) -> Vec<PluginStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }

    /// Brings the plugin behind `file` up to date: (re)loads it if the file
    /// exists, unloads it (or falls back to the built-in) if it does not.
    /// A version that fails to load leaves the previous one serving.
    pub fn reload(&self, file: &Path) {
        let Some(name) = plugin_name(file) else { return };
        match std::fs::read(file) {
            Ok(bytes) => self.load_file(&name, file, &bytes, false),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => self.unload(&name),
            Err(err) => self.record_failure(&name, &file.display().to_string(), format!("cannot read {}: {err}", file.display())),
        }
        self.write_status();
    }

    /// Loads a plugin file; unless `force`, not when the same file is already loaded.
    fn load_file(&self, name: &str, file: &Path, bytes: &[u8], force: bool) {
        let hash = content_hash(bytes);
        if !force && self.snapshot().get(name).is_some_and(|p| p.hash == hash && p.origin == Origin::File(file.to_path_buf())) {
            return;
        }
        match self.load(name, bytes, Origin::File(file.to_path_buf())) {
            Ok(plugin) => {
                tracing::info!(plugin = name, world = %plugin.world, hash = %plugin.hash, file = %file.display(), "plugin loaded");
                self.install(plugin);
            }
            Err(err) => {
                tracing::error!(plugin = name, file = %file.display(), "plugin not loaded, the previous version (if any) keeps serving: {err:#}");
                self.record_failure(name, &file.display().to_string(), format!("{err:#}"));
            }
        }
    }

    fn load_builtin(&self, name: &str) -> anyhow::Result<()> {
        let bytes = BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, b)| *b).context("no such built-in plugin")?;
        let plugin = self.load(name, bytes, Origin::Builtin).with_context(|| format!("built-in plugin `{name}` does not load"))?;
        self.install(plugin);
        Ok(())
    }

    fn load(&self, name: &str, bytes: &[u8], origin: Origin) -> anyhow::Result<Plugin> {
        let policy = read(&self.config).plugin_policy(name);
        let plugin = self.loader.load(name, bytes, origin, policy)?;
        if let Some((world, key)) = read(&self.required).get(name)
            && *world != plugin.world
        {
            bail!("it is a {} plugin, but `{key}` uses it as a {world}", plugin.world);
        }
        Ok(plugin)
    }

    fn unload(&self, name: &str) {
        if BUILTIN.iter().any(|(n, _)| *n == name) {
            match self.load_builtin(name) {
                Ok(()) => tracing::info!(plugin = name, "plugin file removed; the built-in version serves again"),
                Err(err) => tracing::error!(plugin = name, "plugin file removed and the built-in does not load: {err:#}"),
            }
            return;
        }
        let mut set = (*self.snapshot()).clone();
        if set.remove(name).is_none() {
            return;
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        if let Some((_, key)) = read(&self.required).get(name) {
            tracing::warn!(plugin = name, "plugin file removed; `{key}` names it and now does without it");
        } else {
            tracing::info!(plugin = name, "plugin removed");
        }
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = status.get_mut(name) {
            entry.state = LoadState::Removed;
        }
    }

    fn install(&self, plugin: Plugin) {
        let status = PluginStatus {
            name: plugin.name.to_string(),
            world: plugin.world.to_string(),
            wit_version: plugin.wit_version.clone(),
            hash: plugin.hash.clone(),
            origin: plugin.origin.to_string(),
            state: LoadState::Loaded,
            last_error: None,
        };
        {
            let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
            let mut set = (**current).clone();
            set.insert(plugin.name.to_string(), Arc::new(plugin));
            *current = Arc::new(set);
        }
        self.status.lock().unwrap_or_else(PoisonError::into_inner).insert(status.name.clone(), status);
    }

    fn record_failure(&self, name: &str, origin: &str, error: String) {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = status.entry(name.to_string()).or_insert_with(|| PluginStatus {
            name: name.to_string(),
            world: String::new(),
            wit_version: String::new(),
            hash: String::new(),
            origin: origin.to_string(),
            state: LoadState::Failed,
            last_error: None,
        });
        if !self.snapshot().contains_key(name) {
            entry.state = LoadState::Failed;
        }
        entry.last_error = Some(error);
    }

    fn check_required(&self, required: &Required) -> anyhow::Result<()> {
        let set = self.snapshot();
        for (name, (world, key)) in required {
            if !set.contains_key(name) {
                let why = self.status.lock().unwrap_or_else(PoisonError::into_inner).get(name).and_then(|s| s.last_error.clone());
                let mut available: Vec<&str> = set.keys().map(String::as_str).collect();
                available.sort_unstable();
                match why {
                    Some(why) => bail!("configuration key `{key}`: {world} plugin `{name}` did not load: {why}"),
                    None => bail!(
                        "configuration key `{key}`: there is no plugin `{name}` (looked for {}; available: {})",
                        self.dir.join(format!("{name}.wasm")).display(),
                        available.join(", ")
                    ),
                }
            }
        }
        Ok(())
    }

    fn wasm_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            tracing::info!(dir = %self.dir.display(), "no plugins folder; only built-in plugins are available");
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).filter(|p| plugin_name(p).is_some()).collect();
        files.sort();
        files
    }

    /// Written after every change so `sluice plugins list` can show it.
    fn write_status(&self) {
        let statuses = self.statuses();
        let result = serde_json::to_vec_pretty(&statuses).map_err(anyhow::Error::from).and_then(|json| {
            let dir = self.status_file.parent().context("status file has no folder")?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            std::io::Write::write_all(&mut tmp, &json)?;
            tmp.persist(&self.status_file)?;
            Ok(())
        });
        if let Err(err) = result {
            tracing::warn!(file = %self.status_file.display(), "cannot write the plugin status: {err:#}");
        }
    }
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// `plugins/require-fields.wasm` → `require-fields`; `None` for other files.
pub fn plugin_name(file: &Path) -> Option<String> {
    if file.extension()? != "wasm" {
        return None;
    }
    let name = file.file_stem()?.to_str()?;
    (!name.starts_with('.')).then(|| name.to_string())
}

/// Every plugin the configuration uses, the world it must implement and the
/// first config key that names it.
fn required_worlds(config: &Config) -> anyhow::Result<Required> {
    let validators = config.validator_uses().into_iter().map(|(key, step)| (&step.plugin, World::Validator, key));
    let routers = config.connectors.iter().filter_map(|(c, cfg)| Some((cfg.route.as_ref()?, World::Router, format!("connectors.{c}.route"))));
    let delivery = config.connectors.iter().filter_map(|(c, cfg)| Some((cfg.plugin.as_ref()?, World::Connector, format!("connectors.{c}.plugin"))));
    let mut required = Required::new();
    for (name, world, key) in validators.chain(routers).chain(delivery) {
        match required.get(name) {
            Some((first, first_key)) if *first != world => {
                bail!("configuration key `{key}`: plugin `{name}` is used as a {world} here but as a {first} by `{first_key}`")
            }
            Some(_) => {}
            None => {
                required.insert(name.clone(), (world, key));
            }
        }
    }
    Ok(required)
}
