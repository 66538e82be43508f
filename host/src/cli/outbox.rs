//! `sluice outbox stats|list`: asks the running server through its admin API.

use std::process::ExitCode;

use clap::Subcommand;
use serde::Deserialize;
use serde_json::Value;

use super::ConfigArgs;
use super::admin_client::{AdminArgs, AdminClient};
use super::path_segment;

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Depth of each connector's outbox and dead-letter queue.
    Stats {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        json: bool,
    },
    /// A connector's queued messages, oldest first.
    List {
        connector: String,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Deserialize)]
struct Depths {
    connectors: Vec<Depth>,
    /// The message journal's disk use.
    journal_bytes: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Depth {
    connector: String,
    outbox: u64,
    dead_letter: u64,
}

#[derive(Debug, Deserialize)]
struct Entry {
    seq: u64,
    control_id: String,
    message_type: String,
    sending_application: String,
}

pub fn run(command: OutboxCommand) -> anyhow::Result<ExitCode> {
    match command {
        OutboxCommand::Stats { config, admin, json } => {
            let client = AdminClient::new(&admin, &config.load()?)?;
            let depths: Value = client.get("/api/outbox")?;
            if json {
                println!("{depths}");
            } else {
                println!("{:<24} {:>12} {:>12}", "connector", "outbox", "dead_letter");
                let depths = serde_json::from_value::<Depths>(depths)?;
                for d in depths.connectors {
                    println!("{:<24} {:>12} {:>12}", d.connector, d.outbox, d.dead_letter);
                }
                if let Some(bytes) = depths.journal_bytes {
                    println!("journal: {:.1} MiB on disk", bytes as f64 / (1024.0 * 1024.0));
                }
            }
        }
        OutboxCommand::List { connector, config, admin, limit, json } => {
            let client = AdminClient::new(&admin, &config.load()?)?;
            let entries: Value = client.get(&format!("/api/outbox/{}?limit={limit}", path_segment(&connector)))?;
            if json {
                println!("{entries}");
            } else {
                for e in serde_json::from_value::<Vec<Entry>>(entries)? {
                    println!("{:>10}  {:<22} {:<16} {}", e.seq, e.control_id, e.message_type, e.sending_application);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
