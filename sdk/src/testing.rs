//! Unit-testing plugins natively, without Wasm or an engine.
//!
//! The harness plays the host: it parses the message with the engine's own
//! HL7 parser, hands the plugin the settings JSON given for the call and
//! keeps what the plugin logs. The plugin code under test is exactly the
//! code that runs in Wasm.
//!
//! ```
//! use sluice_sdk::{Message, Validator, Verdict, testing};
//!
//! /// Refuses messages without a patient identifier.
//! struct NeedsPid3;
//!
//! impl Validator for NeedsPid3 {
//!     fn validate(msg: &Message) -> Verdict {
//!         match msg.get("PID-3") {
//!             Ok(Some(_)) => Verdict::Accept,
//!             Ok(None) => Verdict::Reject(sluice_sdk::Issue::required_field_missing("PID-3")),
//!             Err(err) => Verdict::Error(err.into()),
//!         }
//!     }
//! }
//!
//! let adt = "MSH|^~\\&|APP|FAC|||20240101||ADT^A01|1|P|2.5\n\
//!            PID|1||12345^^^HOSP^MR";
//! assert_eq!(testing::validate::<NeedsPid3>(adt, "{}"), Verdict::Accept);
//!
//! let Verdict::Reject(issue) = testing::validate::<NeedsPid3>("MSH|^~\\&|||||||ADT^A01|2|P|2.5\nPID|1", "{}") else {
//!     panic!("expected a reject");
//! };
//! assert_eq!(issue.location.as_deref(), Some("PID-3"));
//! ```

use std::cell::RefCell;

use crate::log::Level;
use crate::{Connector, Delivery, Issue, Message, Router, Validator, Verdict, native};

thread_local! {
    static SETTINGS: RefCell<String> = RefCell::new(NO_SETTINGS.to_owned());
    static LOGS: RefCell<Vec<LogLine>> = const { RefCell::new(Vec::new()) };
}

/// What the host passes when the configuration gives no settings.
const NO_SETTINGS: &str = "{}";

/// One line the plugin logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    pub text: String,
}

/// Parses a message for a test. Segments may end with `\r` (as on the
/// wire) or `\n`, and indentation before a segment is ignored, so messages
/// can be written as indented string literals.
///
/// # Panics
///
/// When the text is not a message the engine would accept (no MSH, no
/// MSH-9 or MSH-10, ...): the test itself is wrong.
#[track_caller]
pub fn message(text: &str) -> Message {
    let segments: Vec<&str> = text.lines().flat_map(|line| line.split('\r')).map(str::trim_start).filter(|s| !s.is_empty()).collect();
    match native::Message::parse(&segments.join("\r")) {
        Ok(msg) => Message(msg),
        Err(err) => panic!("not an HL7 message the engine would accept: {err}"),
    }
}

/// Runs `call` with `settings` (a JSON object) as the plugin's settings,
/// as the host does for each call. [`logs`] afterwards gives what `call`
/// logged. Use it to test helpers that read settings; the functions below
/// use it for whole plugin calls.
pub fn with_settings<R>(settings: &str, call: impl FnOnce() -> R) -> R {
    SETTINGS.set(settings.to_owned());
    LOGS.with_borrow_mut(Vec::clear);
    let result = call();
    SETTINGS.set(NO_SETTINGS.to_owned());
    result
}

/// Calls a validator as the host would, once, with these settings.
#[track_caller]
pub fn validate<V: Validator>(message: &str, settings: &str) -> Verdict {
    let msg = self::message(message);
    with_settings(settings, || V::validate(&msg))
}

/// Calls a router as the host would for the connector named `connector`.
#[track_caller]
pub fn route<R: Router>(message: &str, connector: &str, settings: &str) -> Result<bool, Issue> {
    let msg = self::message(message);
    with_settings(settings, || R::route(&msg, connector))
}

/// Calls a connector as the host would for delivery attempt `attempt` (from 1).
#[track_caller]
pub fn deliver<C: Connector>(message: &str, attempt: u32, settings: &str) -> Delivery {
    let msg = self::message(message);
    with_settings(settings, || C::deliver(&msg, attempt))
}

/// The lines logged during the last call on this thread.
pub fn logs() -> Vec<LogLine> {
    LOGS.with_borrow(Vec::clone)
}

pub(crate) fn current_settings() -> String {
    SETTINGS.with_borrow(String::clone)
}

pub(crate) fn capture_log(level: Level, text: &str) {
    LOGS.with_borrow_mut(|logs| logs.push(LogLine { level, text: text.to_owned() }));
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::{ErrorCode, log, settings};

    /// Logs what it does and reads `{"take": bool}`.
    struct Chatty;

    #[derive(Deserialize)]
    struct Take {
        take: bool,
    }

    impl Router for Chatty {
        fn route(_msg: &Message, connector: &str) -> Result<bool, Issue> {
            let Take { take } = settings()?;
            log::info(format!("asked by {connector}"));
            log::debug("done");
            Ok(take)
        }
    }

    const ADT: &str = "MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5";

    #[test]
    fn passes_settings_and_captures_logs_per_call() {
        assert_eq!(route::<Chatty>(ADT, "lab", r#"{"take": true}"#), Ok(true));
        let want = [LogLine { level: Level::Info, text: "asked by lab".into() }, LogLine { level: Level::Debug, text: "done".into() }];
        assert_eq!(logs(), want);
        assert_eq!(route::<Chatty>(ADT, "archive", r#"{"take": false}"#), Ok(false));
        assert_eq!(logs()[0].text, "asked by archive", "each call starts a fresh capture");
    }

    #[test]
    fn settings_that_do_not_fit_are_a_207() {
        let issue = route::<Chatty>(ADT, "lab", "{}").unwrap_err();
        assert_eq!(issue.code, ErrorCode::APPLICATION_INTERNAL_ERROR);
        assert_eq!(issue.text, "invalid plugin settings: missing field `take` at line 1 column 2");
        let issue = route::<Chatty>(ADT, "lab", "{take: true}").unwrap_err();
        assert!(issue.text.starts_with("invalid plugin settings: key must be a string"), "{}", issue.text);
    }

    #[test]
    fn settings_are_empty_outside_a_call() {
        with_settings(r#"{"take": true}"#, || assert!(settings::<Take>().is_ok()));
        assert_eq!(current_settings(), "{}");
    }

    #[test]
    fn parses_messages_written_as_indented_literals() {
        let msg = message(
            "
            MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5
            PID|1||42
            ",
        );
        assert_eq!(msg.get("PID-3").unwrap().as_deref(), Some("42"));
        assert_eq!(message("MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5\r\nPID|1||42\r").count("PID"), 1);
    }

    #[test]
    #[should_panic(expected = "not an HL7 message the engine would accept: the message does not start with an MSH segment")]
    fn refuses_text_that_is_not_a_message() {
        message("PID|1||42");
    }
}
