//! `sluice plugins list`: the plugins the running engine has loaded, from
//! the status file it rewrites on every load, reload and failure.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::ConfigArgs;
use crate::plugin::{PluginStatus, STATUS_FILE};

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Name, world, WIT version, file hash, state and last error of each plugin.
    List {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: PluginsCommand) -> anyhow::Result<ExitCode> {
    let PluginsCommand::List { config, json } = command;
    let config = config.load()?;
    let file = config.data_dir.join(STATUS_FILE);
    let text = std::fs::read_to_string(&file).with_context(|| format!("no plugin status at {} (has `sluice serve` run with this data_dir?)", file.display()))?;
    let statuses: Vec<PluginStatus> = serde_json::from_str(&text).with_context(|| format!("{} is not a plugin status file", file.display()))?;
    if json {
        println!("{}", serde_json::to_string(&statuses)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<20} {:<10} {:<8} {:<10} {:<8} origin / last error", "name", "world", "version", "hash", "state");
    for s in statuses {
        let state = serde_json::to_value(s.state)?.as_str().unwrap_or_default().to_string();
        let hash = s.hash.get(..8).unwrap_or(&s.hash);
        println!("{:<20} {:<10} {:<8} {:<10} {:<8} {}", s.name, s.world, s.wit_version, hash, state, s.origin);
        if let Some(err) = s.last_error {
            println!("{:<20} last error: {err}", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}
