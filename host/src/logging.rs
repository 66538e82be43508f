//! The engine's logs: tracing to stderr as text or JSON, a level that
//! SIGUSR1 cycles (configured → debug → trace → configured), and [`Phi`],
//! which keeps text that may carry patient data out of the logs unless
//! `log_phi = true` (and then caps it).

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, LogFormat};

/// Longest patient-data text a log line carries with `log_phi = true`.
pub const PHI_CAP: usize = 256;

static LOG_PHI: AtomicBool = AtomicBool::new(false);
static LEVELS: OnceLock<Levels> = OnceLock::new();

struct Levels {
    handle: reload::Handle<EnvFilter, tracing_subscriber::Registry>,
    /// The configured filter, then the ones SIGUSR1 steps through.
    cycle: [String; 3],
    at: AtomicUsize,
}

/// Installs the process's subscriber; call once, before anything logs.
pub fn init(config: &Config) {
    LOG_PHI.store(config.log_phi, Ordering::Relaxed);
    let (filter, handle) = reload::Layer::new(EnvFilter::new(&config.log.level));
    // Colours only for a person at a terminal, never in files or journald.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let text = (config.log.format == LogFormat::Text).then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi));
    let json = (config.log.format == LogFormat::Json).then(|| tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr));
    if tracing_subscriber::registry().with(filter).with(text).with(json).try_init().is_ok() {
        let cycle = [config.log.level.clone(), "debug".into(), "trace".into()];
        let _ = LEVELS.set(Levels { handle, cycle, at: AtomicUsize::new(0) });
    }
}

/// Moves to the next level of the cycle; returns it (`None` when [`init`]
/// did not install the subscriber).
pub fn cycle_level() -> Option<String> {
    let levels = LEVELS.get()?;
    let next = (levels.at.load(Ordering::Relaxed) + 1) % levels.cycle.len();
    let level = &levels.cycle[next];
    levels.handle.reload(EnvFilter::new(level)).ok()?;
    levels.at.store(next, Ordering::Relaxed);
    Some(level.clone())
}

/// Text that may quote patient data (a validator's reason, a receiver's
/// answer, a plugin's stderr), as a log field: its length only, unless
/// `log_phi` is on, then at most [`PHI_CAP`] bytes of it.
pub struct Phi<'a>(pub &'a str);

impl fmt::Display for Phi<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        if !LOG_PHI.load(Ordering::Relaxed) {
            return write!(f, "[{} bytes withheld; log_phi = false]", text.len());
        }
        if text.len() <= PHI_CAP {
            return f.write_str(text);
        }
        let cut = (0..=PHI_CAP).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        write!(f, "{}… [{} more bytes]", &text[..cut], text.len() - cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phi_is_withheld_unless_allowed_then_capped() {
        assert_eq!(Phi("Doe^John").to_string(), "[8 bytes withheld; log_phi = false]");
        LOG_PHI.store(true, Ordering::Relaxed);
        assert_eq!(Phi("Doe^John").to_string(), "Doe^John");
        let long = "é".repeat(200);
        let shown = Phi(&long).to_string();
        LOG_PHI.store(false, Ordering::Relaxed);
        assert!(shown.starts_with(&"é".repeat(128)) && shown.ends_with("… [144 more bytes]"), "{shown}");
    }
}
