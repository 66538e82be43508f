//! `sluice interfaces list` and `sluice rejected list|show`: the running
//! server's interfaces, and the messages they refused, through the admin API.

use std::process::ExitCode;

use clap::Subcommand;
use serde::Deserialize;
use serde_json::Value;

use super::ConfigArgs;
use super::admin_client::{AdminArgs, AdminClient};
use super::dlq::time;
use super::path_segment;
use crate::interface::InterfaceStatus;

#[derive(Debug, Subcommand)]
pub enum InterfacesCommand {
    /// Each interface: its listeners, rules, open connections and what each sender got.
    List {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RejectedCommand {
    /// Refused messages, newest first.
    List {
        /// Only those of this interface.
        #[arg(long)]
        interface: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Older than this ID (the last one of the previous page).
        #[arg(long)]
        before: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// One refused message: what is known of it and its wire form.
    Show {
        id: u64,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        admin: AdminArgs,
        /// Only the message as received.
        #[arg(long)]
        raw: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Deserialize)]
struct Entry {
    id: u64,
    interface: String,
    peer: String,
    received_at_ms: u64,
    sending_application: String,
    sending_facility: String,
    control_id: String,
    answer: String,
    reason: String,
}

pub fn run_interfaces(command: InterfacesCommand) -> anyhow::Result<ExitCode> {
    let InterfacesCommand::List { config, admin, json } = command;
    let client = AdminClient::new(&admin, &config.load()?)?;
    let listed: Value = client.get("/api/interfaces")?;
    if json {
        println!("{listed}");
        return Ok(ExitCode::SUCCESS);
    }
    for interface in serde_json::from_value::<Vec<InterfaceStatus>>(listed)? {
        let listeners: Vec<String> = interface.listeners.iter().map(|l| if l.tls { format!("{} (TLS)", l.addr) } else { l.addr.to_string() }).collect();
        println!("{}  on {}", interface.name, listeners.join(", "));
        let validators = if interface.validators.is_empty() { "none".to_string() } else { interface.validators.join(", ") };
        println!("  validators: {validators}; connectors: {}", interface.connectors.join(", "));
        println!("  ack_mode: {}; sender rules: {}; max_connections: {}", interface.ack_mode, interface.sender_rules, interface.max_connections);
        println!("  last message: {}", interface.last_message_ms.map_or("never".into(), time));
        println!("  connections: {}", interface.connections.len());
        for c in &interface.connections {
            println!("    {}{}  since {}  {} messages", c.peer, if c.tls { " (TLS)" } else { "" }, time(c.connected_at_ms), c.messages);
        }
        for (sender, counts) in &interface.senders {
            let by: Vec<String> = counts.messages.iter().map(|(answer, n)| format!("{answer} {n}")).collect();
            println!("  sender {sender}: {} (last {})", by.join(", "), time(counts.last_message_ms));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_rejected(command: RejectedCommand) -> anyhow::Result<ExitCode> {
    match command {
        RejectedCommand::List { interface, config, admin, limit, before, json } => {
            let client = AdminClient::new(&admin, &config.load()?)?;
            let mut path = format!("/api/rejected?limit={limit}");
            if let Some(interface) = &interface {
                path.push_str(&format!("&interface={}", path_segment(interface)));
            }
            if let Some(before) = before {
                path.push_str(&format!("&before={before}"));
            }
            let entries: Value = client.get(&path)?;
            if json {
                println!("{entries}");
                return Ok(ExitCode::SUCCESS);
            }
            let entries: Vec<Entry> = serde_json::from_value(entries)?;
            if entries.is_empty() {
                println!("no rejected messages");
            }
            for e in entries {
                println!(
                    "{:>20}  {}  {:<10} {:<21} {}^{} {:<20} {:<6} {}",
                    e.id,
                    time(e.received_at_ms),
                    e.interface,
                    e.peer,
                    e.sending_application,
                    e.sending_facility,
                    e.control_id,
                    e.answer,
                    e.reason
                );
            }
        }
        RejectedCommand::Show { id, config, admin, raw, json } => {
            let client = AdminClient::new(&admin, &config.load()?)?;
            let shown: Value = client.get(&format!("/api/rejected/{id}"))?;
            if json {
                println!("{shown}");
                return Ok(ExitCode::SUCCESS);
            }
            let text = shown["raw"].as_str().unwrap_or_default();
            if !raw {
                for key in ["interface", "peer", "sending_application", "sending_facility", "message_type", "control_id", "answer", "reason", "truncated"] {
                    println!("{key:<20} {}", shown[key].as_str().map(str::to_string).unwrap_or_else(|| shown[key].to_string()));
                }
                println!("{:<20} {}", "received", time(shown["received_at_ms"].as_u64().unwrap_or_default()));
                println!();
            }
            // Segments one per line, as people read them.
            println!("{}", text.replace('\r', "\n").trim_end());
        }
    }
    Ok(ExitCode::SUCCESS)
}
