//! `sluice messages search|show|resend`: the journal of the running server,
//! through its admin API.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};

use super::ConfigArgs;
use super::admin_client::{AdminArgs, AdminClient};
use super::dlq::time;
use super::path_segment;

#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
    /// Journalled messages, newest first; every filter given must hold.
    Search {
        #[arg(long)]
        control_id: Option<String>,
        /// PID-3.1.
        #[arg(long)]
        patient: Option<String>,
        /// `ADT^A01`, or `ADT` for every trigger.
        #[arg(long = "type")]
        message_type: Option<String>,
        /// `APP^FAC`, or `APP` for every facility (MSH-3, MSH-4).
        #[arg(long)]
        sender: Option<String>,
        /// What the sender got: AA, AE, AR, CA, CE, CR, none, closed.
        #[arg(long)]
        ack: Option<String>,
        /// A connector's state: queued, delivered, dead.
        #[arg(long)]
        state: Option<String>,
        /// Received within this long before now: `2h`, `30m`.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        since: Option<String>,
        /// Received at or after (RFC 3339, e.g. 2026-12-01T08:00:00Z).
        #[arg(long)]
        from: Option<String>,
        /// Received at or before (RFC 3339).
        #[arg(long)]
        to: Option<String>,
        /// Older than this ID (the `next` cursor of the previous page).
        #[arg(long)]
        before: Option<u64>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        json: bool,
    },
    /// One message: segment by segment with field numbers, its ACK and its history per connector.
    Show {
        id: u64,
        /// Only the message as received.
        #[arg(long)]
        raw: bool,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        json: bool,
    },
    /// Queue a journalled message again on a connector (audited in the journal).
    Resend {
        id: u64,
        #[arg(long)]
        connector: String,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

pub fn run(command: MessagesCommand) -> anyhow::Result<ExitCode> {
    match command {
        MessagesCommand::Search { control_id, patient, message_type, sender, ack, state, since, from, to, before, limit, config, admin, json } => {
            let client = AdminClient::new(&admin, &config.load()?)?;
            let now = crate::outbox::now_ms();
            let from_ms = match (&since, &from) {
                (Some(since), _) => Some(now.saturating_sub(
                    humantime::parse_duration(since).with_context(|| format!("--since `{since}` is not a duration like 2h"))?.as_millis() as u64,
                )),
                (None, Some(from)) => Some(timestamp(from, "--from")?),
                (None, None) => None,
            };
            let to_ms = to.as_deref().map(|to| timestamp(to, "--to")).transpose()?;
            let mut params = vec![format!("limit={limit}")];
            let text = [("control_id", control_id), ("patient", patient), ("type", message_type), ("sender", sender), ("ack", ack), ("state", state)];
            for (key, value) in text {
                if let Some(value) = value {
                    params.push(format!("{key}={}", path_segment(&value)));
                }
            }
            for (key, value) in [("from_ms", from_ms), ("to_ms", to_ms), ("before", before)] {
                if let Some(value) = value {
                    params.push(format!("{key}={value}"));
                }
            }
            let page: Value = client.get(&format!("/api/messages?{}", params.join("&")))?;
            if json {
                println!("{page}");
                return Ok(ExitCode::SUCCESS);
            }
            let messages = page["messages"].as_array().cloned().unwrap_or_default();
            if messages.is_empty() {
                println!("no messages found");
            } else {
                println!(
                    "{:>20}  {:<20}  {:<10} {:<16} {:<22} {:<16} {:<14} {:<6} connectors",
                    "id", "received", "interface", "type", "control_id", "sender", "patient", "ack"
                );
            }
            for m in &messages {
                let states: Vec<String> =
                    m["states"].as_object().map(|s| s.iter().map(|(c, st)| format!("{c}:{}", st.as_str().unwrap_or(""))).collect()).unwrap_or_default();
                println!(
                    "{:>20}  {:<20}  {:<10} {:<16} {:<22} {:<16} {:<14} {:<6} {}",
                    m["id"],
                    time(m["received_at_ms"].as_u64().unwrap_or(0)),
                    s(&m["interface"]),
                    s(&m["message_type"]),
                    s(&m["control_id"]),
                    format!("{}^{}", s(&m["sending_application"]), s(&m["sending_facility"])),
                    s(&m["patient_id"]),
                    s(&m["ack_code"]),
                    states.join(" ")
                );
            }
            if let Some(next) = page["next"].as_u64() {
                println!("more: --before {next}");
            }
        }
        MessagesCommand::Show { id, raw, config, admin, json } => {
            let client = AdminClient::new(&admin, &config.load()?)?;
            let shown: Value = client.get(&format!("/api/messages/{id}"))?;
            if json {
                println!("{shown}");
                return Ok(ExitCode::SUCCESS);
            }
            let body = shown["raw"].as_str();
            if raw {
                match body {
                    Some(body) => println!("{}", body.replace('\r', "\n").trim_end()),
                    None => anyhow::bail!("message {id}'s body is no longer kept (journal.retention)"),
                }
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "message {id}: {} {} from {}^{} ({})",
                s(&shown["message_type"]),
                s(&shown["control_id"]),
                s(&shown["sending_application"]),
                s(&shown["sending_facility"]),
                s(&shown["peer"])
            );
            println!("received   {} on interface {}, {} bytes", time(shown["received_at_ms"].as_u64().unwrap_or(0)), s(&shown["interface"]), shown["size"]);
            println!("patient    {}", s(&shown["patient_id"]));
            println!("answered   {}{}", s(&shown["ack_code"]), shown["reason"].as_str().map(|r| format!(": {r}")).unwrap_or_default());
            println!();
            match body {
                Some(body) => print_segments(body),
                None => println!("(the message body is no longer kept: journal.retention)"),
            }
            if let Some(ack) = shown["ack"].as_str() {
                println!("\nACK sent:");
                print_segments(ack);
            }
            println!("\nhistory:");
            for e in shown["events"].as_array().cloned().unwrap_or_default() {
                let extra = [
                    e["attempt"].as_u64().map(|a| format!("attempt {a}")),
                    e["detail"].as_str().map(str::to_string),
                    e["by"].as_str().map(|b| format!("by {b}")),
                ];
                let extra: Vec<String> = extra.into_iter().flatten().collect();
                println!("  {}  {:<12} {:<10} {}", time(e["at_ms"].as_u64().unwrap_or(0)), s(&e["connector"]), s(&e["event"]), extra.join("; "));
            }
        }
        MessagesCommand::Resend { id, connector, config, admin } => {
            let client = AdminClient::new(&admin, &config.load()?)?;
            let answer: Value = client.post(&format!("/api/messages/{id}/resend"), &json!({ "connector": connector }))?;
            println!("message {id} queued again on `{connector}` (stored as message {})", answer["message_id"]);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn s(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

fn timestamp(text: &str, flag: &str) -> anyhow::Result<u64> {
    let at: jiff::Timestamp = text.parse().with_context(|| format!("{flag} `{text}` is not a time like 2026-12-01T08:00:00Z"))?;
    Ok(at.as_millisecond().max(0) as u64)
}

/// Each segment on its own line with its fields numbered: `PID-5 Doe^Jane`.
fn print_segments(message: &str) {
    for segment in message.split(['\r', '\n']).filter(|s| !s.is_empty()) {
        let name = segment.get(..3).unwrap_or(segment);
        println!("{name}");
        let is_msh = name == "MSH";
        let separator = if is_msh { segment.chars().nth(3).unwrap_or('|') } else { '|' };
        let fields: Vec<&str> = segment.split(separator).skip(1).collect();
        if is_msh {
            println!("  {name}-1  {separator}");
        }
        for (i, field) in fields.iter().enumerate().filter(|(_, f)| !f.is_empty()) {
            let number = if is_msh { i + 2 } else { i + 1 };
            println!("  {name}-{number:<3} {field}");
        }
    }
}
