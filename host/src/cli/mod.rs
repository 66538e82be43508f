//! The `sluice` command line.

mod admin_client;
mod dlq;
mod interfaces;
mod messages;
mod outbox;
mod plugins;
mod send;
mod serve;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Overrides};

#[derive(Debug, Parser)]
#[command(name = "sluice", version, about = "HL7 v2 integration engine: durable MLLP ingest, programmable with Wasm plugins")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the engine.
    Serve(ConfigArgs),
    /// Send messages over MLLP and print their ACKs, or generate load.
    Send(send::SendArgs),
    /// Inspect connector outboxes (asks the running server).
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// List, show, replay or purge a connector's dead letters (asks the running server).
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Show the plugins the running engine has loaded.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Search the journal, show a message with its ACK and history, resend one.
    #[command(subcommand)]
    Messages(messages::MessagesCommand),
    /// Show the running engine's interfaces, their connections and senders.
    #[command(subcommand)]
    Interfaces(interfaces::InterfacesCommand),
    /// List or show the messages interfaces refused (kept with the reason).
    #[command(subcommand)]
    Rejected(interfaces::RejectedCommand),
    /// Print the effective configuration (all layers applied) as TOML.
    Config(ConfigArgs),
}

/// The configuration layers every command that reads config accepts.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// A TOML config file; repeat for several, later ones win.
    #[arg(long = "config", short = 'c', value_name = "FILE")]
    pub config: Vec<PathBuf>,
    /// MLLP listen address (config `listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Store directory (config `data_dir`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Plugins directory (config `plugins_dir`).
    #[arg(long, value_name = "DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Admin endpoint address (config `admin.listen`).
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
}

impl ConfigArgs {
    pub fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load(&self.config, &self.overrides())?)
    }

    pub fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen.clone(),
            data_dir: self.data_dir.clone(),
            plugins_dir: self.plugins_dir.clone(),
            admin: self.admin_listen.clone().map(|listen| crate::config::AdminOverride { listen }),
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Send(args) => send::run(args),
        Command::Outbox(command) => outbox::run(command),
        Command::Dlq(command) => dlq::run(command),
        Command::Plugins(command) => plugins::run(command),
        Command::Interfaces(command) => interfaces::run_interfaces(command),
        Command::Messages(command) => messages::run(command),
        Command::Rejected(command) => interfaces::run_rejected(command),
        Command::Config(args) => {
            print!("{}", toml::to_string(&args.load()?)?);
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

/// `name` as one URL path segment: unreserved characters as they are, the rest percent-encoded.
fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
