//! `sluice dlq list|show|replay|purge`: a connector's dead letters, through
//! the running server's admin API.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ConfigArgs;
use super::admin_client::{AdminArgs, AdminClient};
use super::path_segment;

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// A connector's dead letters, oldest first.
    List {
        connector: String,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Only dead letters with a greater ID (the last one of the previous page).
        #[arg(long, value_name = "ID")]
        after: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// One dead letter: why it failed, and the message.
    Show {
        connector: String,
        id: u64,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        json: bool,
    },
    /// Queue dead letters again, at the tail of the outbox, attempts reset.
    Replay(Selected),
    /// Delete dead letters for good.
    Purge(Selected),
}

/// The dead letters a replay or purge acts on: one by ID, or all of the connector's.
#[derive(Debug, Args)]
pub struct Selected {
    connector: String,
    /// The dead letter's ID (see `sluice dlq list`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    id: Option<u64>,
    /// Every dead letter of the connector.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Debug, Deserialize)]
struct DeadLetter {
    id: u64,
    message_id: u64,
    attempts: u32,
    error: String,
    dead_at_ms: u64,
    received_at_ms: u64,
    control_id: String,
    message_type: String,
    sending_application: String,
    sending_facility: String,
    #[serde(default)]
    raw: String,
}

pub fn run(command: DlqCommand) -> anyhow::Result<ExitCode> {
    match command {
        DlqCommand::List { connector, config, admin, limit, after, json } => {
            let client = AdminClient::new(&admin, &config.load()?)?;
            let after = after.map(|id| format!("&after={id}")).unwrap_or_default();
            let letters: Value = client.get(&format!("/api/dlq/{}?limit={limit}{after}", path_segment(&connector)))?;
            if json {
                println!("{letters}");
                return Ok(ExitCode::SUCCESS);
            }
            let letters: Vec<DeadLetter> = serde_json::from_value(letters)?;
            if letters.is_empty() {
                println!("no dead letters in `{connector}`");
                return Ok(ExitCode::SUCCESS);
            }
            println!("{:>10}  {:<22} {:<16} {:>8}  {:<20}  last error", "id", "control_id", "type", "attempts", "dead since");
            for d in letters {
                println!("{:>10}  {:<22} {:<16} {:>8}  {:<20}  {}", d.id, d.control_id, d.message_type, d.attempts, time(d.dead_at_ms), d.error);
            }
        }
        DlqCommand::Show { connector, id, config, admin, json } => {
            let client = AdminClient::new(&admin, &config.load()?)?;
            let letter: Value = client.get(&format!("/api/dlq/{}/{id}", path_segment(&connector)))?;
            if json {
                println!("{letter}");
                return Ok(ExitCode::SUCCESS);
            }
            let d: DeadLetter = serde_json::from_value(letter)?;
            println!("dead letter {} of `{connector}`", d.id);
            println!("message:    {} ({} from {}/{}, control ID {})", d.message_id, d.message_type, d.sending_application, d.sending_facility, d.control_id);
            println!("received:   {}", time(d.received_at_ms));
            println!("attempts:   {}", d.attempts);
            println!("last error: {}", d.error);
            println!("dead since: {}", time(d.dead_at_ms));
            println!();
            // HL7 separates segments with CR; a terminal wants one per line.
            for segment in d.raw.split(['\r', '\n']).filter(|s| !s.is_empty()) {
                println!("{segment}");
            }
        }
        DlqCommand::Replay(selected) => selected.act("replay", "replayed")?,
        DlqCommand::Purge(selected) => selected.act("purge", "purged")?,
    }
    Ok(ExitCode::SUCCESS)
}

impl Selected {
    /// POSTs `/api/dlq/<connector>/<action>`; the answer counts under `done`.
    fn act(&self, action: &str, done: &str) -> anyhow::Result<()> {
        let client = AdminClient::new(&self.admin, &self.config.load()?)?;
        let answer: Value = client.post(&format!("/api/dlq/{}/{action}", path_segment(&self.connector)), &self.body())?;
        println!("{done} {} of `{}`", self.describe(answer[done].as_u64().unwrap_or(0)), self.connector);
        Ok(())
    }

    fn body(&self) -> Value {
        match self.id {
            Some(id) => json!({ "id": id }),
            None => json!({ "all": true }),
        }
    }

    /// "dead letter 7", "3 dead letters", "1 dead letter".
    fn describe(&self, count: u64) -> String {
        match self.id {
            Some(id) => format!("dead letter {id}"),
            None if count == 1 => "1 dead letter".into(),
            None => format!("{count} dead letters"),
        }
    }
}

/// Milliseconds since the epoch as an RFC 3339 UTC time, to the second.
pub(super) fn time(ms: u64) -> String {
    i64::try_from(ms / 1000).ok().and_then(|s| jiff::Timestamp::from_second(s).ok()).map_or_else(|| ms.to_string(), |t| t.to_string())
}
