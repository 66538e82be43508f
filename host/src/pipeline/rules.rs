//! The validate and route steps as configured: an ordered list of validator
//! plugins, and per connector an optional router plugin, each with its
//! settings. A message runs against one snapshot of the loaded plugins, so a
//! hot reload never switches plugins under it.

use std::sync::Arc;
use std::time::Instant;

use super::lossy;
use crate::ack::{ErrorCode, Issue, Outcome};
use crate::config::{Config, InterfaceSpec, Settings};
use crate::hl7::Message;
use crate::metrics::Metrics;
use crate::plugin::{MessageScope, PluginFailure, PluginIssue, PluginSet, Verdict};

/// One use of a plugin with its settings, serialised once as JSON.
#[derive(Debug, Clone)]
struct Step {
    plugin: String,
    settings: Arc<str>,
}

#[derive(Debug, Clone)]
struct Route {
    connector: Arc<str>,
    router: Option<Step>,
}

#[derive(Debug, Clone, Default)]
pub struct Rules {
    validators: Vec<Step>,
    routes: Vec<Route>,
}

impl Rules {
    /// An interface's validators, and the routes of the connectors it may feed (in config order).
    pub fn for_interface(spec: &InterfaceSpec, config: &Config) -> Rules {
        Rules {
            validators: spec.validate.iter().map(|u| Step::new(&u.plugin, &u.config)).collect(),
            routes: config
                .connectors
                .iter()
                .filter(|(name, _)| spec.connectors.contains(name))
                .map(|(name, c)| Route { connector: Arc::from(name.as_str()), router: c.route.as_ref().map(|r| Step::new(r, &c.route_config)) })
                .collect(),
        }
    }

    /// No validators; every connector takes every message.
    pub fn unconditional(connectors: &[Arc<str>]) -> Rules {
        Rules { validators: Vec::new(), routes: connectors.iter().map(|c| Route { connector: c.clone(), router: None }).collect() }
    }

    /// Whether any step needs a plugin (and so the message as a resource).
    pub fn uses_plugins(&self) -> bool {
        !self.validators.is_empty() || self.routes.iter().any(|r| r.router.is_some())
    }

    /// Runs the validators in order; `Some` is the first non-accepting
    /// outcome. A validator whose plugin file was removed is skipped.
    pub async fn validate(&self, plugins: &PluginSet, scope: &mut MessageScope, message: &Arc<Message>, metrics: &Metrics) -> Option<Outcome> {
        for step in &self.validators {
            let Some(plugin) = plugins.get(&step.plugin) else { continue };
            let started = Instant::now();
            let verdict = plugin.validate(scope, message.clone(), step.settings.clone()).await;
            metrics.observe_plugin_call(&step.plugin, "validator", started.elapsed());
            match verdict {
                Ok(Verdict::Accept) => {}
                Ok(Verdict::Reject(issue)) => return Some(Outcome::Rejected(ack_issue(issue))),
                Ok(Verdict::Error(issue)) => return Some(Outcome::Errored(ack_issue(issue))),
                Err(failure) => return Some(failed(failure, message, None)),
            }
        }
        None
    }

    /// The connectors that take this message, or the outcome that stops it
    /// (a router that cannot decide). A connector whose router plugin file
    /// was removed takes nothing until it is back: sending patient data to a
    /// destination no rule allows is worse than holding it.
    pub async fn route(&self, plugins: &PluginSet, scope: &mut MessageScope, message: &Arc<Message>, metrics: &Metrics) -> Result<Vec<Arc<str>>, Outcome> {
        let mut taken = Vec::with_capacity(self.routes.len());
        for route in &self.routes {
            let Some(step) = &route.router else {
                taken.push(route.connector.clone());
                continue;
            };
            let Some(plugin) = plugins.get(&step.plugin) else { continue };
            let started = Instant::now();
            let taken_here = plugin.route(scope, message.clone(), step.settings.clone(), &route.connector).await;
            metrics.observe_plugin_call(&step.plugin, "router", started.elapsed());
            match taken_here {
                Ok(Ok(true)) => taken.push(route.connector.clone()),
                Ok(Ok(false)) => {}
                Ok(Err(issue)) => return Err(Outcome::Errored(ack_issue(issue))),
                Err(failure) => return Err(failed(failure, message, Some(&route.connector))),
            }
        }
        Ok(taken)
    }
}

impl Step {
    fn new(plugin: &str, settings: &Settings) -> Step {
        let json = serde_json::to_string(settings).unwrap_or_else(|_| "{}".into());
        Step { plugin: plugin.to_string(), settings: Arc::from(json) }
    }
}

/// A plugin that gave no answer (trap, deadline, memory): logged, and an AE
/// whose text names the plugin and the cause.
/// `connector` is the connector a router was deciding for.
fn failed(failure: PluginFailure, message: &Message, connector: Option<&str>) -> Outcome {
    tracing::warn!(control_id = %lossy(&message.header().control_id), connector, "{}", failure.for_log());
    Outcome::Errored(Issue::new(ErrorCode::APPLICATION_INTERNAL_ERROR, failure.to_string()))
}

/// A plugin's issue in ACK terms; a location that is not a valid path is dropped.
fn ack_issue(issue: PluginIssue) -> Issue {
    let located = Issue::new(ErrorCode(issue.code), issue.text);
    match &issue.location {
        Some(path) => located.at(path),
        None => located,
    }
}
