//! Running one call of a plugin: a store with the plugin's limits and
//! grants, an instance from its `InstancePre`, the message lent as a
//! resource, and an epoch deadline. Which instance a call runs on (one per
//! message, or one kept across messages) is decided in `loaded`.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Resource;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::bindings::{connector, router, types, validator};
use super::engine::{EPOCH_TICK, PluginEngine};
use super::failure::{DeadlineReached, PluginFailure};
use super::http::HttpGrant;
use super::limiter::MemoryLimiter;
use super::mllp_client::{Destination, MllpAccess};
use super::state::{MessageRef, NetGrants, PluginState};
use crate::config::PluginPolicy;
use crate::hl7::Message;

/// A plugin's instantiation recipe, type-checked against its world.
pub enum Pre {
    Validator(validator::ValidatorPre<PluginState>),
    Router(router::RouterPre<PluginState>),
    Connector(connector::ConnectorPre<PluginState>),
}

/// A live instance and the store it lives in.
pub struct Live {
    store: Store<PluginState>,
    exports: Exports,
}

enum Exports {
    Validator(validator::Validator),
    Router(router::Router),
    Connector(connector::Connector),
}

/// What a call asks of the plugin.
pub enum Call<'a> {
    Validate,
    Route { connector: &'a str },
    Deliver { attempt: u32 },
}

/// What the plugin answered.
pub enum Answer {
    Verdict(types::Verdict),
    Route(Result<bool, types::Issue>),
    Delivery(types::Delivery),
}

impl Live {
    pub async fn start(engine: &PluginEngine, name: &Arc<str>, pre: &Pre, policy: &PluginPolicy) -> Result<Live, PluginFailure> {
        let wasi = wasi_grants(policy).map_err(|err| PluginFailure::Trap { plugin: name.to_string(), detail: format!("{err:#}"), said: String::new() })?;
        let state = PluginState::new(name.clone(), Arc::from("{}"), wasi, MemoryLimiter::new(policy.memory_limit.0 as usize), net_grants(engine, policy));
        let mut store = Store::new(&engine.engine, state);
        store.limiter(|state| state.limiter());
        arm_deadline(&mut store, policy);
        let exports = match pre {
            Pre::Validator(pre) => pre.instantiate_async(&mut store).await.map(Exports::Validator),
            Pre::Router(pre) => pre.instantiate_async(&mut store).await.map(Exports::Router),
            Pre::Connector(pre) => pre.instantiate_async(&mut store).await.map(Exports::Connector),
        };
        match exports {
            Ok(exports) => Ok(Live { store, exports }),
            Err(err) => Err(PluginFailure::from_error(name, policy.deadline, &err, store.data().stderr_text())),
        }
    }

    /// The largest linear memory this instance has had, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.store.data().peak_memory()
    }

    pub async fn call(&mut self, policy: &PluginPolicy, message: Arc<Message>, settings: Arc<str>, call: Call<'_>) -> Result<Answer, PluginFailure> {
        let answer = self.try_call(policy, message, settings, call).await;
        answer.map_err(|err| {
            let state = self.store.data();
            PluginFailure::from_error(&state.plugin, policy.deadline, &err, state.stderr_text())
        })
    }

    async fn try_call(&mut self, policy: &PluginPolicy, message: Arc<Message>, settings: Arc<str>, call: Call<'_>) -> wasmtime::Result<Answer> {
        arm_deadline(&mut self.store, policy);
        self.store.data_mut().set_settings(settings);
        let handle = self.store.data_mut().lend(message)?;
        let borrowed = Resource::<MessageRef>::new_borrow(handle.rep());
        let store = &mut self.store;
        let answer = match (&self.exports, call) {
            (Exports::Validator(v), Call::Validate) => v.call_validate(&mut *store, borrowed).await.map(Answer::Verdict),
            (Exports::Router(r), Call::Route { connector }) => r.call_route(&mut *store, borrowed, connector).await.map(Answer::Route),
            (Exports::Connector(c), Call::Deliver { attempt }) => c.call_deliver(&mut *store, borrowed, attempt).await.map(Answer::Delivery),
            _ => Err(wasmtime::format_err!("this plugin's world does not answer that call")),
        };
        self.store.data_mut().take_back(handle);
        answer
    }
}

/// Gives the next call (or the instantiation) `policy.deadline` of the
/// plugin's own running time, counted in epoch ticks. The epoch advances
/// every [`EPOCH_TICK`]; the callback runs at the first check in the
/// plugin's code after each advance, so a plugin that computes is charged
/// about one tick per tick, and yields its thread each time. A plugin
/// suspended in an async host call (an MLLP send, a wasi:http response, a
/// pollable) runs no code: however long it waits, its return is charged one
/// tick. Past the budget the call traps.
fn arm_deadline(store: &mut Store<PluginState>, policy: &PluginPolicy) {
    let budget = ticks(policy.deadline);
    let mut charged: u64 = 0;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        charged += 1;
        if charged >= budget {
            return Err(wasmtime::Error::new(DeadlineReached));
        }
        Ok(UpdateDeadline::Yield(1))
    });
}

/// Whole epoch ticks in `deadline`, at least one.
fn ticks(deadline: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos().max(1);
    u64::try_from(deadline.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX).max(1)
}

/// Refuses `allow.http` and `allow.mllp` entries that name no reachable
/// host, rather than letting them silently grant nothing.
pub fn check_net_grants(policy: &PluginPolicy) -> anyhow::Result<()> {
    if let Some(bad) = policy.allow.http.iter().find(|entry| HttpGrant::parse(entry).is_none()) {
        anyhow::bail!("allow.http entry `{bad}` is not `host` or `host:port`");
    }
    if let Some(bad) = policy.allow.mllp.iter().find(|entry| Destination::parse(entry).is_none()) {
        anyhow::bail!("allow.mllp entry `{bad}` is not `host:port`");
    }
    Ok(())
}

/// What of the network `policy` grants, and the engine's MLLP pool.
fn net_grants(engine: &PluginEngine, policy: &PluginPolicy) -> NetGrants {
    let mllp = policy.allow.mllp.iter().filter_map(|entry| Destination::parse(entry)).collect();
    NetGrants {
        http: HttpGrant::parse_all(&policy.allow.http).into(),
        mllp: MllpAccess { pool: engine.mllp.clone(), allowed: mllp },
        tls: engine.outbound_tls.clone(),
    }
}

/// The WASI context: only what the policy grants. No sockets, no
/// environment, no files, no stdin; stdout is discarded. (wasi:http and
/// MLLP are granted separately, see `net_grants`.)
pub fn wasi_grants(policy: &PluginPolicy) -> wasmtime::Result<WasiCtxBuilder> {
    let mut wasi = WasiCtxBuilder::new();
    for name in &policy.allow.env {
        if let Ok(value) = std::env::var(name) {
            wasi.env(name, value);
        }
    }
    for (dirs, perms) in [(&policy.allow.read_dirs, FsPerms::ReadOnly), (&policy.allow.write_dirs, FsPerms::ReadWrite)] {
        for dir in dirs {
            wasi.preopened_dir(dir, dir.to_string_lossy(), perms)?;
        }
    }
    Ok(wasi)
}

#[cfg(test)]
mod tests;
