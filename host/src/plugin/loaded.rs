//! One loaded version of a plugin: its world, where it came from, its hash,
//! its sandbox policy, and the `InstancePre` every call starts from. A
//! message holds an `Arc` to the version it started with, so a hot reload
//! never changes the plugin under a message in flight.
//!
//! Instances live for one message: a plugin that several steps of a message
//! use (the same router on five connectors) is instantiated once for it, in
//! the message's [`MessageScope`], and dropped with it. A `keep_state` plugin
//! keeps its one instance across messages instead.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use super::bindings::types;
use super::engine::PluginEngine;
use super::failure::PluginFailure;
use super::instance::{Answer, Call, Live, Pre};
use crate::config::PluginPolicy;
use crate::hl7::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    Validator,
    Router,
    Connector,
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            World::Validator => "validator",
            World::Router => "router",
            World::Connector => "connector",
        })
    }
}

/// Where a plugin's bytes came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Compiled into the engine (the stock plugins).
    Builtin,
    /// A `.wasm` file in the plugins folder.
    File(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Builtin => f.write_str("built-in"),
            Origin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

pub struct Plugin {
    pub name: Arc<str>,
    pub world: World,
    /// The `sluice:plugin` version the component was built against.
    pub wit_version: String,
    /// xxh3-128 of the component's bytes, hex.
    pub hash: String,
    pub origin: Origin,
    pub(super) policy: PluginPolicy,
    pub(super) pre: Pre,
    pub(super) engine: PluginEngine,
    /// The one instance of a `keep_state` plugin; calls take turns on it.
    pub(super) kept: Option<tokio::sync::Mutex<Option<Live>>>,
}

/// The plugin instances one message has used; dropped when the message is done.
#[derive(Default)]
pub struct MessageScope {
    /// Keyed by the address of the plugin version, which the message's
    /// snapshot keeps alive.
    lives: Vec<(usize, Live)>,
}

impl Plugin {
    pub async fn validate(&self, scope: &mut MessageScope, message: Arc<Message>, settings: Arc<str>) -> Result<types::Verdict, PluginFailure> {
        match self.within_deadline(self.call(scope, message, settings, Call::Validate)).await? {
            Answer::Verdict(verdict) => Ok(verdict),
            _ => Err(self.wrong_world()),
        }
    }

    pub async fn route(
        &self,
        scope: &mut MessageScope,
        message: Arc<Message>,
        settings: Arc<str>,
        connector: &str,
    ) -> Result<Result<bool, types::Issue>, PluginFailure> {
        match self.within_deadline(self.call(scope, message, settings, Call::Route { connector })).await? {
            Answer::Route(taken) => Ok(taken),
            _ => Err(self.wrong_world()),
        }
    }

    pub async fn deliver(&self, scope: &mut MessageScope, message: Arc<Message>, settings: Arc<str>, attempt: u32) -> Result<types::Delivery, PluginFailure> {
        match self.call(scope, message, settings, Call::Deliver { attempt }).await? {
            Answer::Delivery(delivery) => Ok(delivery),
            _ => Err(self.wrong_world()),
        }
    }

    /// Validators and routers hold a sender's ACK: besides the deadline on
    /// their own running time, their whole call (waits in granted host calls
    /// included) gets the same span of wall time. Connectors are bounded by
    /// their connector's `attempt_timeout` instead.
    async fn within_deadline(&self, call: impl Future<Output = Result<Answer, PluginFailure>>) -> Result<Answer, PluginFailure> {
        match tokio::time::timeout(self.policy.deadline, call).await {
            Ok(answer) => answer,
            Err(_) => Err(PluginFailure::Deadline { plugin: self.name.to_string(), limit: self.policy.deadline }),
        }
    }

    async fn call(&self, scope: &mut MessageScope, message: Arc<Message>, settings: Arc<str>, call: Call<'_>) -> Result<Answer, PluginFailure> {
        let Some(kept) = &self.kept else {
            let key = self as *const Plugin as usize;
            // Out of the scope while it runs, back only when the call
            // succeeded: an instance that failed, or whose call future was
            // dropped halfway (a caller's timeout), may be left in any state,
            // and the next step that uses this plugin gets a new one.
            let found = scope.lives.iter().position(|(k, _)| *k == key);
            let mut live = match found {
                Some(index) => scope.lives.swap_remove(index).1,
                None => Live::start(&self.engine, &self.name, &self.pre, &self.policy).await?,
            };
            let answer = live.call(&self.policy, message, settings, call).await;
            if answer.is_ok() {
                scope.lives.push((key, live));
            }
            return answer;
        };
        let mut slot = kept.lock().await;
        let mut live = match slot.take() {
            Some(live) => live,
            None => Live::start(&self.engine, &self.name, &self.pre, &self.policy).await?,
        };
        let answer = live.call(&self.policy, message, settings, call).await;
        if answer.is_ok() {
            *slot = Some(live);
        }
        answer
    }

    fn wrong_world(&self) -> PluginFailure {
        PluginFailure::Trap { plugin: self.name.to_string(), detail: format!("a {} plugin cannot answer this call", self.world), said: String::new() }
    }
}
