//! `sluice send`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::config::OutboundTlsConfig;
use crate::send::{AckSummary, LoadOptions, MllpClient, messages_in, run_load};
use crate::tls::ClientTls;

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Where to send: HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub to: String,
    /// Files or directories of messages to send, in order.
    #[arg(value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    /// Load mode: connections sending at once.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Load mode: messages to send in all.
    #[arg(long)]
    pub count: Option<u64>,
    /// Load mode: how long to send (e.g. 10s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Load mode: size in bytes of the generated ADT^A01.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// How long to wait for a connection or an ACK.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print the load report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Connect over TLS (implied by --ca, --cert and --server-name).
    #[arg(long)]
    pub tls: bool,
    /// TLS: CA certificates (PEM) the server must chain to; default: the system's.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// TLS: client certificate chain (PEM), for servers that require one.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// TLS: the client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// TLS: the name the server's certificate must carry; default: the host of --to.
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
}

impl SendArgs {
    fn client_tls(&self) -> anyhow::Result<Option<Arc<ClientTls>>> {
        if !(self.tls || self.ca.is_some() || self.cert.is_some() || self.server_name.is_some()) {
            return Ok(None);
        }
        let settings = OutboundTlsConfig {
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            server_name: self.server_name.clone(),
            ..Default::default()
        };
        Ok(Some(Arc::new(ClientTls::for_address(&self.to, &settings)?)))
    }
}

pub fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    let tls = args.client_tls()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        if args.count.is_some() || args.duration.is_some() {
            anyhow::ensure!(args.paths.is_empty(), "load mode sends generated ADT^A01 messages; give no files");
            let report = run_load(LoadOptions {
                to: args.to,
                connections: args.connections,
                count: args.count,
                duration: args.duration,
                size: args.size,
                timeout: args.timeout,
                tls,
            })
            .await?;
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{report}");
            }
            return Ok(if report.errors == 0 && report.not_accepted == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        anyhow::ensure!(!args.paths.is_empty(), "give files or directories to send, or --count/--duration for load mode");
        let messages = messages_in(&args.paths)?;
        anyhow::ensure!(!messages.is_empty(), "no messages found in the given files");
        let mut client = MllpClient::connect_with(&args.to, tls.as_deref(), args.timeout).await?;
        let mut all_accepted = true;
        for (path, message) in messages {
            let ack = client.send(&message).await?;
            let summary = AckSummary::parse(&ack)?;
            all_accepted &= summary.is_accept();
            println!("{}: {} {}", path.display(), summary.code, String::from_utf8_lossy(&summary.control_id));
            println!("{}", String::from_utf8_lossy(&ack).trim_end().replace('\r', "\n"));
        }
        Ok(if all_accepted { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
}
