//! `sluice outbox stats|list`: reads the store through a secondary instance,
//! so it works while `sluice serve` runs.

use std::process::ExitCode;

use clap::Subcommand;

use super::ConfigArgs;
use crate::outbox::StoreReader;

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Depth of each connector's outbox and dead-letter queue.
    Stats {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        json: bool,
    },
    /// A connector's queued messages, oldest first.
    List {
        connector: String,
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: OutboxCommand) -> anyhow::Result<ExitCode> {
    match command {
        OutboxCommand::Stats { config, json } => {
            let config = config.load()?;
            let depths = StoreReader::open(&config.data_dir)?.depths(&config.connector_names())?;
            if json {
                println!("{}", serde_json::json!({ "connectors": depths }));
            } else {
                println!("{:<24} {:>12} {:>12}", "connector", "outbox", "dead_letter");
                for d in depths {
                    println!("{:<24} {:>12} {:>12}", d.connector, d.outbox, d.dead_letter);
                }
            }
        }
        OutboxCommand::List { connector, config, limit, json } => {
            let config = config.load()?;
            let entries = StoreReader::open(&config.data_dir)?.outbox(&connector, limit)?;
            if json {
                println!("{}", serde_json::to_string(&entries)?);
            } else {
                for e in entries {
                    println!("{:>10}  {:<22} {:<16} {}", e.seq, e.meta.control_id, e.meta.message_type, e.meta.sending_application);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
