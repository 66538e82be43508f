//! Interfaces (DESIGN §1; Mirth's channels, BizTalk's receive locations):
//! each inbound listener with its own validators, connectors, limits,
//! framing and ACK policy per sender, all in one process and changed
//! without a restart.

mod policy;
mod running;
mod stats;

use std::sync::Arc;

use crate::config::{Config, InterfaceSpec};
use crate::pipeline::Rules;

pub use policy::{AckPolicy, SenderPolicy};
pub use running::{InterfaceHandle, InterfaceSettings, InterfaceStatus, Interfaces, ListenerStatus, Serving};
pub use stats::{ConnectionGuard, ConnectionStatus, InterfaceStats, MAX_SENDERS, SenderCounts, sender_label};

/// What a message on one interface is judged by: swapped whole on reload,
/// so a message never sees half of an old configuration and half of a new one.
#[derive(Debug, Clone)]
pub struct InterfaceRules {
    pub name: Arc<str>,
    pub rules: Rules,
    pub ack: AckPolicy,
}

impl InterfaceRules {
    pub fn from_spec(spec: &InterfaceSpec, config: &Config) -> InterfaceRules {
        InterfaceRules { name: Arc::from(spec.name.as_str()), rules: Rules::for_interface(spec, config), ack: AckPolicy::from_config(&spec.ack) }
    }

    /// Every connector takes every message; no validators; the default ACK policy.
    pub fn unconditional(name: &str, connectors: &[Arc<str>]) -> InterfaceRules {
        InterfaceRules { name: Arc::from(name), rules: Rules::unconditional(connectors), ack: AckPolicy::default() }
    }
}
