//! Interfaces: inbound listeners, each with its own validators, connectors,
//! limits, framing and ACK policy (`[interfaces.NAME]`). The top-level
//! `listen`, `[tls] listen`, `[[validate]]`, limits and every connector form
//! the interface named `default`; an `[interfaces.default]` table overrides
//! what it sets of those.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ByteSize, Config, PluginUse};
use crate::mllp::{CARRIAGE_RETURN, END_BLOCK, Framing, START_BLOCK};

/// The name of the interface the top-level settings form.
pub const DEFAULT_INTERFACE: &str = "default";

/// One `[interfaces.NAME]` table. Unset limits inherit the top-level ones.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InterfaceConfig {
    /// Address to listen on (required for a named interface).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// `"default"`: this listener speaks TLS with the `[tls]` certificate,
    /// key and client CA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// Validators, in order; unset: none (the default interface: `[[validate]]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validate: Option<Vec<PluginUse>>,
    /// The connectors this interface may feed (their routers still decide per
    /// message); unset: every connector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connectors: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_frame_size: Option<ByteSize>,
    #[serde(skip_serializing_if = "Option::is_none", with = "humantime_serde")]
    pub frame_timeout: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    pub framing: FramingConfig,
    /// How messages on this interface are acknowledged, unless a sender rule says otherwise.
    pub ack_mode: AckModeSetting,
    pub on_reject: OnNack,
    pub on_error: OnNack,
    /// Per-sender overrides, matched in order on MSH-3 and MSH-4; the first match wins.
    pub senders: Vec<SenderRule>,
}

/// The frame markers (MLLP: 0x0B, 0x1C, then CR), for senders that use others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FramingConfig {
    pub start: u8,
    pub end: u8,
    /// Whether the end byte must be followed by CR. Off: a CR after it is
    /// still taken as part of the trailer.
    pub trailing_cr: bool,
}

impl Default for FramingConfig {
    fn default() -> Self {
        FramingConfig { start: START_BLOCK, end: END_BLOCK, trailing_cr: true }
    }
}

impl FramingConfig {
    pub fn framing(self) -> Framing {
        Framing { start: self.start, end: self.end, trailing_cr: self.trailing_cr }
    }
}

/// `ack_mode`: which acknowledgement a sender gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckModeSetting {
    /// MSH-15/16 decide (HL7 v2 chapter 2.9): original mode when both are empty.
    #[default]
    Auto,
    /// Always AA/AE/AR, whatever MSH-15/16 say.
    Original,
    /// Always commit ACKs CA/CE/CR (when MSH-15 asks for them; always if it is empty).
    Enhanced,
    /// One-way: nothing is sent back. The message is still durable before the
    /// next frame is read.
    None,
}

/// `on_reject` / `on_error`: what a sender gets instead of a positive ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnNack {
    /// AR (or AE) as the ACK mode says.
    #[default]
    Nack,
    /// Close the connection, for senders that take any ACK as success: they
    /// resend instead of losing the message.
    Close,
}

/// One `[[interfaces.NAME.senders]]` rule: globs (`*`, `?`, `[...]`, no case)
/// on MSH-3 and MSH-4, and the settings it overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SenderRule {
    pub sending_application: String,
    pub sending_facility: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_mode: Option<AckModeSetting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_reject: Option<OnNack>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnNack>,
}

impl Default for SenderRule {
    fn default() -> Self {
        SenderRule { sending_application: "*".into(), sending_facility: "*".into(), ack_mode: None, on_reject: None, on_error: None }
    }
}

/// An interface as it runs: every setting resolved, inheritance applied.
/// Two specs that compare equal need no change on reload.
#[derive(Debug, Clone, PartialEq)]
pub struct InterfaceSpec {
    pub name: String,
    pub listeners: Vec<ListenerSpec>,
    pub validate: Vec<PluginUse>,
    pub connectors: Vec<String>,
    pub max_connections: usize,
    pub max_frame_size: usize,
    pub frame_timeout: Duration,
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
    pub framing: Framing,
    pub ack: AckPolicyConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerSpec {
    pub addr: SocketAddr,
    pub tls: bool,
}

/// The interface-wide ACK settings and the sender rules that override them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AckPolicyConfig {
    pub ack_mode: AckModeSetting,
    pub on_reject: OnNack,
    pub on_error: OnNack,
    pub senders: Vec<SenderRule>,
}

/// A problem with one key, as `(key, reason)`.
type Problem = (String, String);

impl Config {
    /// Every interface with at least one listener, `default` first.
    pub fn interface_specs(&self) -> Result<Vec<InterfaceSpec>, Problem> {
        let mut specs = Vec::new();
        let default = self.interfaces.get(DEFAULT_INTERFACE).cloned().unwrap_or_default();
        let mut listeners = Vec::new();
        match &default.listen {
            Some(listen) => listeners.extend(listener(DEFAULT_INTERFACE, listen, default.tls.is_some())?),
            None => {
                if let Some(addr) = self.listen_addr() {
                    let addr = addr.map_err(|err| key("listen", format!("`{}` is not an address like 0.0.0.0:2575, or `off` ({err})", self.listen)))?;
                    listeners.push(ListenerSpec { addr, tls: false });
                }
                if let Some(addr) = &self.tls.listen {
                    let addr = addr.parse().map_err(|err| key("tls.listen", format!("`{addr}` is not an address like 0.0.0.0:2576 ({err})")))?;
                    listeners.push(ListenerSpec { addr, tls: true });
                }
            }
        }
        let default_validate = default.validate.clone().unwrap_or_else(|| self.validate.clone());
        specs.push(self.spec(DEFAULT_INTERFACE, &default, listeners, default_validate)?);
        for (name, interface) in self.interfaces.iter().filter(|(name, _)| *name != DEFAULT_INTERFACE) {
            let prefix = format!("interfaces.{name}");
            if !super::is_name(name) {
                return Err(key(&prefix, "interface names use letters, digits, `-`, `_` and `.` (at most 64)".into()));
            }
            let Some(listen) = &interface.listen else {
                return Err(key(&format!("{prefix}.listen"), "is required: the address this interface listens on, like 0.0.0.0:6661".into()));
            };
            let listeners = listener(name, listen, interface.tls.is_some())?;
            specs.push(self.spec(name, interface, listeners, interface.validate.clone().unwrap_or_default())?);
        }
        specs.retain(|spec| !spec.listeners.is_empty());
        Ok(specs)
    }

    fn spec(&self, name: &str, interface: &InterfaceConfig, listeners: Vec<ListenerSpec>, validate: Vec<PluginUse>) -> Result<InterfaceSpec, Problem> {
        let prefix = format!("interfaces.{name}");
        if let Some(tls) = &interface.tls {
            if tls != "default" {
                return Err(key(&format!("{prefix}.tls"), format!("`{tls}` is not a TLS profile; the only one is `default`, the `[tls]` certificate")));
            }
            if self.tls.cert.is_none() || self.tls.key.is_none() {
                return Err(key(&format!("{prefix}.tls"), "`default` needs `tls.cert` and `tls.key`".into()));
            }
        }
        let connectors = match &interface.connectors {
            None => self.connectors.keys().cloned().collect(),
            Some(names) => {
                if let Some(unknown) = names.iter().find(|c| !self.connectors.contains_key(*c)) {
                    return Err(key(&format!("{prefix}.connectors"), format!("`{unknown}` is not a configured connector ([connectors.{unknown}])")));
                }
                names.clone()
            }
        };
        for (i, step) in validate.iter().enumerate() {
            if !super::is_name(&step.plugin) {
                return Err(key(&format!("{prefix}.validate[{i}].plugin"), format!("`{}` is not a plugin name (the file name without `.wasm`)", step.plugin)));
            }
        }
        let max_frame_size = interface.max_frame_size.unwrap_or(self.max_frame_size).0;
        if max_frame_size < 1024 {
            return Err(key(&format!("{prefix}.max_frame_size"), format!("{max_frame_size} bytes is too small; at least 1 KiB")));
        }
        let frame_timeout = interface.frame_timeout.unwrap_or(self.frame_timeout);
        let idle_timeout = interface.idle_timeout.unwrap_or(self.idle_timeout);
        for (field, value) in [("frame_timeout", frame_timeout), ("idle_timeout", idle_timeout)] {
            if value.is_zero() {
                return Err(key(&format!("{prefix}.{field}"), "must be greater than zero".into()));
            }
        }
        let framing = interface.framing;
        if framing.start == framing.end || [framing.start, framing.end].contains(&CARRIAGE_RETURN) {
            return Err(key(&format!("{prefix}.framing"), "start and end must differ from each other and from CR (0x0D)".into()));
        }
        for (i, rule) in interface.senders.iter().enumerate() {
            for (field, pattern) in [("sending_application", &rule.sending_application), ("sending_facility", &rule.sending_facility)] {
                if let Err(err) = glob::Pattern::new(pattern) {
                    return Err(key(&format!("{prefix}.senders[{i}].{field}"), format!("`{pattern}` is not a glob ({err})")));
                }
            }
        }
        Ok(InterfaceSpec {
            name: name.to_string(),
            listeners,
            validate,
            connectors,
            max_connections: interface.max_connections.unwrap_or(self.max_connections),
            max_frame_size: max_frame_size as usize,
            frame_timeout,
            idle_timeout,
            connect_timeout: self.connect_timeout,
            framing: framing.framing(),
            ack: AckPolicyConfig {
                ack_mode: interface.ack_mode,
                on_reject: interface.on_reject,
                on_error: interface.on_error,
                senders: interface.senders.clone(),
            },
        })
    }

    /// Checks the interfaces as a whole: each resolves, no two bind the same port.
    pub(super) fn interface_problem(&self) -> Option<Problem> {
        let specs = match self.interface_specs() {
            Ok(specs) => specs,
            Err(problem) => return Some(problem),
        };
        if specs.is_empty() {
            return Some(key("listen", "is `off` and no `tls.listen` or interface is set: the engine would not listen at all".into()));
        }
        let mut seen: Vec<(SocketAddr, &str)> = Vec::new();
        for spec in &specs {
            for listener in spec.listeners.iter().filter(|l| l.addr.port() != 0) {
                if let Some((_, other)) = seen.iter().find(|(addr, _)| *addr == listener.addr) {
                    return Some(key(&format!("interfaces.{}.listen", spec.name), format!("{} is already the address of interface `{other}`", listener.addr)));
                }
                seen.push((listener.addr, &spec.name));
            }
        }
        None
    }
}

fn listener(name: &str, listen: &str, tls: bool) -> Result<Vec<ListenerSpec>, Problem> {
    if listen == "off" {
        return Ok(Vec::new());
    }
    let addr =
        listen.parse().map_err(|err| key(&format!("interfaces.{name}.listen"), format!("`{listen}` is not an address like 0.0.0.0:6661, or `off` ({err})")))?;
    Ok(vec![ListenerSpec { addr, tls }])
}

fn key(key: &str, reason: String) -> Problem {
    (key.to_string(), reason)
}
