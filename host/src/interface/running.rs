//! The interfaces as they run, and how a new configuration is applied to
//! them: listeners whose address is unchanged keep their socket and their
//! connections; changed rules and limits are swapped in for the next
//! message and the next connection; a removed interface stops accepting and
//! its connections close after the message they are on.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::InterfaceRules;
use super::stats::{ConnectionStatus, InterfaceStats, SenderCounts};
use crate::config::{Config, InterfaceSpec, ListenerSpec};
use crate::metrics::Metrics;
use crate::mllp::{ConnectionLimits, Listener, Slots, slots};
use crate::pipeline::Pipeline;
use crate::tls::ServerTls;

/// The settings a connection of the interface reads: rules for each message,
/// limits when it starts.
pub struct InterfaceSettings {
    pub rules: InterfaceRules,
    pub limits: ConnectionLimits,
    pub slots: Slots,
    /// The certificate TLS listeners of this interface present.
    pub tls: Option<Arc<ServerTls>>,
}

/// One running interface, shared by its listeners and connections.
pub struct InterfaceHandle {
    pub name: Arc<str>,
    settings: RwLock<Arc<InterfaceSettings>>,
    pub stats: InterfaceStats,
    /// Cancelled when the interface is removed or the engine stops: its
    /// connections finish the message they are on and close.
    pub stop: CancellationToken,
}

impl InterfaceHandle {
    pub fn settings(&self) -> Arc<InterfaceSettings> {
        self.settings.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn replace(&self, settings: InterfaceSettings) {
        *self.settings.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(settings);
    }
}

/// What every interface's listeners and connections share.
#[derive(Clone)]
pub struct Serving {
    pub pipeline: Arc<Pipeline>,
    pub metrics: Arc<Metrics>,
    /// Every connection task, so a shutdown can wait for them.
    pub tasks: TaskTracker,
    pub force_close: CancellationToken,
}

struct Running {
    spec: InterfaceSpec,
    handle: Arc<InterfaceHandle>,
    listeners: Vec<RunningListener>,
}

struct RunningListener {
    spec: ListenerSpec,
    addr: SocketAddr,
    /// Stops the accept loop only; its connections go on.
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// What `sluice interfaces list` shows for one interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceStatus {
    pub name: String,
    pub listeners: Vec<ListenerStatus>,
    pub validators: Vec<String>,
    pub connectors: Vec<String>,
    pub ack_mode: String,
    pub sender_rules: usize,
    pub max_connections: usize,
    pub connections: Vec<ConnectionStatus>,
    pub senders: BTreeMap<String, SenderCounts>,
    pub last_message_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerStatus {
    pub addr: SocketAddr,
    pub tls: bool,
}

pub struct Interfaces {
    serving: Serving,
    running: tokio::sync::Mutex<BTreeMap<String, Running>>,
}

impl Interfaces {
    pub fn new(serving: Serving) -> Interfaces {
        Interfaces { serving, running: tokio::sync::Mutex::default() }
    }

    /// Brings the running interfaces to `specs`. New addresses are bound
    /// first: if one cannot be, nothing changes and the error names the key.
    /// Returns one line per change, for the log.
    pub async fn apply(&self, specs: &[InterfaceSpec], config: &Config, server_tls: Option<Arc<ServerTls>>) -> anyhow::Result<Vec<String>> {
        let mut running = self.running.lock().await;
        // Bind every listener that does not run yet, before changing anything:
        // from here on nothing can fail.
        let mut bound: BTreeMap<(String, usize), (Listener, SocketAddr)> = BTreeMap::new();
        for spec in specs {
            for (i, listener) in spec.listeners.iter().enumerate() {
                let exists = running.get(&spec.name).is_some_and(|r| r.listeners.iter().any(|l| l.spec == *listener));
                if !exists {
                    let key = if spec.name == crate::config::DEFAULT_INTERFACE { "listen".to_string() } else { format!("interfaces.{}.listen", spec.name) };
                    let new = Listener::bind(listener.addr, listener.tls).await.map_err(|err| anyhow::anyhow!("configuration key `{key}`: {err:#}"))?;
                    let addr = new.local_addr().map_err(|err| anyhow::anyhow!("configuration key `{key}`: {err}"))?;
                    bound.insert((spec.name.clone(), i), (new, addr));
                }
            }
        }

        let mut changes = Vec::new();
        let names: Vec<String> = running.keys().filter(|name| !specs.iter().any(|s| &s.name == *name)).cloned().collect();
        for name in names {
            let Some(old) = running.remove(&name) else { continue };
            for listener in &old.listeners {
                listener.stop.cancel();
            }
            old.handle.stop.cancel();
            changes.push(format!("interface `{name}` removed: no new connections; open ones close after their current message"));
        }
        for spec in specs {
            let rules = InterfaceRules::from_spec(spec, config);
            let limits = ConnectionLimits {
                framing: spec.framing,
                max_frame_size: spec.max_frame_size,
                frame_timeout: spec.frame_timeout,
                idle_timeout: spec.idle_timeout,
                connect_timeout: spec.connect_timeout,
            };
            let entry = running.get_mut(&spec.name);
            let same_limit = entry.as_ref().is_some_and(|r| r.spec.max_connections == spec.max_connections);
            let slots = match &entry {
                Some(r) if same_limit => r.handle.settings().slots.clone(),
                _ => slots(spec.max_connections),
            };
            let settings = InterfaceSettings { rules, limits, slots, tls: server_tls.clone() };
            let (handle, old_listeners) = match entry {
                Some(r) => {
                    r.handle.replace(settings);
                    if r.spec != *spec {
                        changes.push(format!("interface `{}` changed: new settings apply to the next message and the next connection", spec.name));
                    }
                    (r.handle.clone(), std::mem::take(&mut r.listeners))
                }
                None => {
                    let handle = Arc::new(InterfaceHandle {
                        name: Arc::from(spec.name.as_str()),
                        settings: RwLock::new(Arc::new(settings)),
                        stats: InterfaceStats::default(),
                        stop: CancellationToken::new(),
                    });
                    changes.push(format!("interface `{}` added", spec.name));
                    (handle, Vec::new())
                }
            };
            let mut listeners = Vec::new();
            for old in old_listeners {
                if spec.listeners.contains(&old.spec) {
                    listeners.push(old);
                } else {
                    old.stop.cancel();
                    changes.push(format!("interface `{}` stopped listening on {}; its open connections go on", spec.name, old.addr));
                }
            }
            for (i, listener_spec) in spec.listeners.iter().enumerate() {
                let Some((listener, addr)) = bound.remove(&(spec.name.clone(), i)) else { continue };
                let stop = CancellationToken::new();
                let task = tokio::spawn(listener.run(handle.clone(), self.serving.clone(), stop.clone()));
                tracing::info!(interface = %spec.name, %addr, tls = listener_spec.tls, "interface listening");
                listeners.push(RunningListener { spec: *listener_spec, addr, stop, task });
            }
            running.insert(spec.name.clone(), Running { spec: spec.clone(), handle, listeners });
        }
        Ok(changes)
    }

    /// Stops every listener and waits for the accept loops to end; open
    /// connections go on.
    pub async fn stop_accepting(&self) {
        let mut running = self.running.lock().await;
        for interface in running.values_mut() {
            for listener in interface.listeners.drain(..) {
                listener.stop.cancel();
                let _ = listener.task.await;
            }
        }
    }

    /// Asks every connection to close after the message it is on.
    pub async fn stop_connections(&self) {
        for interface in self.running.lock().await.values() {
            interface.handle.stop.cancel();
        }
    }

    /// The bound addresses: `(interface, tls, address)`.
    pub async fn bound(&self) -> Vec<(String, bool, SocketAddr)> {
        let running = self.running.lock().await;
        running.iter().flat_map(|(name, r)| r.listeners.iter().map(move |l| (name.clone(), l.spec.tls, l.addr))).collect()
    }

    pub async fn status(&self) -> Vec<InterfaceStatus> {
        let running = self.running.lock().await;
        running
            .values()
            .map(|r| InterfaceStatus {
                name: r.spec.name.clone(),
                listeners: r.listeners.iter().map(|l| ListenerStatus { addr: l.addr, tls: l.spec.tls }).collect(),
                validators: r.spec.validate.iter().map(|u| u.plugin.clone()).collect(),
                connectors: r.spec.connectors.clone(),
                ack_mode: format!("{:?}", r.spec.ack.ack_mode).to_lowercase(),
                sender_rules: r.spec.ack.senders.len(),
                max_connections: r.spec.max_connections,
                connections: r.handle.stats.connections(),
                senders: r.handle.stats.senders(),
                last_message_ms: r.handle.stats.last_message_ms(),
            })
            .collect()
    }
}
