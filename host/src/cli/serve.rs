//! `sluice serve`.

use std::io::Write;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use super::ConfigArgs;

pub fn run(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = args.load()?;
    crate::logging::init(&config);
    // At least two runtime threads: the group-commit leader holds one
    // during an fsync (see outbox::store) while another keeps serving.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().thread_name("sluice").build()?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        crate::server::cancel_on_signals(shutdown.clone())?;
        let source = crate::reload::ConfigSource { files: args.config.clone(), overrides: args.overrides() };
        crate::server::run(config, source, shutdown, |bound| {
            if let Some(admin) = bound.admin {
                println!("sluice admin on {admin}");
            }
            for (name, tls, addr) in bound.interfaces.iter().filter(|(name, _, _)| name != crate::config::DEFAULT_INTERFACE) {
                let kind = if *tls { "tls " } else { "" };
                println!("sluice interface {name} {kind}on {addr}");
            }
            if let Some(tls) = bound.tls {
                println!("sluice tls on {tls}");
            }
            // The readiness line scripts and tests wait for (the port may be 0 in config); keep it last.
            println!("sluice listening on {}", bound.mllp);
            let _ = std::io::stdout().flush();
        })
        .await
    })?;
    Ok(ExitCode::SUCCESS)
}
