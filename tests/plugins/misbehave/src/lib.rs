//! A validator that misbehaves on demand, for the engine's end-to-end tests
//! of the plugin sandbox. Settings: `{"mode": "...", "text": "...", "when": "..."}`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Deserialize;
use sluice_sdk::{ErrorCode, Issue, Message, Validator, Verdict};

pub struct Misbehave;

sluice_sdk::export_validator!(Misbehave);

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    /// Accepts everything: the plugin is loaded and called, nothing more.
    #[default]
    Accept,
    /// Panics, which is a Wasm trap: one AE, and the engine keeps serving.
    Trap,
    /// Never returns: the epoch deadline must interrupt it.
    Spin,
    /// Allocates until the memory limit refuses: one AE, not an OOM kill.
    MemoryBomb,
    /// Counts calls in a `static`: state surviving from one message to the
    /// next shows up as "call 2", proving instances are fresh (or reused
    /// only when configured to be).
    Count,
    /// Always rejects (code 200 at MSH-9): the AR path and its ERR segment.
    Reject,
    /// Always answers `error` (code 207): the AE path.
    Error,
    /// Rejects with the value of the environment variable `target` as the
    /// plugin sees it (`unset` when it cannot): proves env grants.
    ShowEnv,
    /// Rejects saying whether the file `target` could be read: proves
    /// directory grants (and that nothing is readable by default).
    ReadFile,
}

#[derive(Deserialize)]
struct Settings {
    #[serde(default)]
    mode: Mode,
    /// The reject text, for tests that look for it in MSA-3 and ERR-7.
    text: Option<String>,
    /// Misbehave only for messages whose MSH-10 contains this; accept the
    /// rest. Lets one test run well-behaved traffic beside the bad.
    when: Option<String>,
    /// What `show-env` and `read-file` look at.
    #[serde(default)]
    target: String,
}

static CALLS: AtomicU32 = AtomicU32::new(0);

impl Validator for Misbehave {
    fn validate(msg: &Message) -> Verdict {
        let settings: Settings = match sluice_sdk::settings() {
            Ok(settings) => settings,
            Err(issue) => return Verdict::Error(issue),
        };
        if let Some(marker) = &settings.when
            && !msg.header().control_id.contains(marker.as_str())
        {
            return Verdict::Accept;
        }
        match settings.mode {
            Mode::Accept => Verdict::Accept,
            Mode::Trap => panic!("misbehave: trap on purpose"),
            Mode::Spin => spin(),
            Mode::MemoryBomb => memory_bomb(),
            Mode::Count => match CALLS.fetch_add(1, Ordering::Relaxed) + 1 {
                1 => Verdict::Accept,
                n => Verdict::Reject(Issue::internal_error(format!("call {n}"))),
            },
            Mode::Reject => {
                let text = settings.text.unwrap_or_else(|| "misbehave: rejected on purpose".into());
                Verdict::Reject(Issue::new(ErrorCode::UNSUPPORTED_MESSAGE_TYPE, text).at("MSH-9"))
            }
            Mode::Error => Verdict::Error(Issue::internal_error("misbehave: error on purpose")),
            Mode::ShowEnv => {
                let value = std::env::var(&settings.target).unwrap_or_else(|_| "unset".into());
                Verdict::Reject(Issue::internal_error(format!("env {}={value}", settings.target)))
            }
            Mode::ReadFile => match std::fs::read(&settings.target) {
                Ok(bytes) => Verdict::Reject(Issue::internal_error(format!("read {} bytes", bytes.len()))),
                Err(err) => Verdict::Reject(Issue::internal_error(format!("cannot read: {err}"))),
            },
        }
    }
}

/// `black_box` keeps the optimiser from proving the loop does nothing.
fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = black_box(n).wrapping_add(1);
    }
}

/// Grows by 1 MiB at a time and writes every page, so the memory is really
/// committed; when the allocator gets no more, Rust aborts, which is a trap.
fn memory_bomb() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1; 1 << 20]);
        black_box(&hoard);
    }
}

#[cfg(test)]
mod tests {
    use sluice_sdk::{ErrorCode, Issue, Verdict, testing};

    use super::Misbehave;

    const ADT: &str = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5";

    fn validate(settings: &str) -> Verdict {
        testing::validate::<Misbehave>(ADT, settings)
    }

    #[test]
    fn answers_as_told() {
        assert_eq!(validate("{}"), Verdict::Accept);
        let reject = Issue::new(ErrorCode::UNSUPPORTED_MESSAGE_TYPE, "no thanks").at("MSH-9");
        assert_eq!(validate(r#"{"mode": "reject", "text": "no thanks"}"#), Verdict::Reject(reject));
        assert_eq!(validate(r#"{"mode": "error"}"#), Verdict::Error(Issue::internal_error("misbehave: error on purpose")));
        let Verdict::Error(unknown) = validate(r#"{"mode": "explode"}"#) else { panic!("an unknown mode is an error") };
        assert!(unknown.text.contains("unknown variant `explode`"), "{}", unknown.text);
    }

    #[test]
    fn misbehaves_only_when_the_control_id_matches() {
        let settings = r#"{"mode": "reject", "when": "BAD"}"#;
        assert_eq!(validate(settings), Verdict::Accept);
        let bad = ADT.replace("|1|P|", "|BAD1|P|");
        assert!(matches!(testing::validate::<Misbehave>(&bad, settings), Verdict::Reject(_)));
    }

    #[test]
    fn counts_calls_in_a_static() {
        // The only test that touches CALLS, so the count is this test's own.
        assert_eq!(validate(r#"{"mode": "count"}"#), Verdict::Accept);
        assert_eq!(validate(r#"{"mode": "count"}"#), Verdict::Reject(Issue::internal_error("call 2")));
    }

    #[test]
    #[should_panic(expected = "trap on purpose")]
    fn traps() {
        validate(r#"{"mode": "trap"}"#);
    }
}
