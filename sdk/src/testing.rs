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
use std::time::Duration;

use crate::log::Level;
use crate::mllp::{Ack, SendError};
use crate::{Connector, Delivery, Issue, Message, Router, Validator, Verdict, native};

/// Plays the MLLP destinations: `(destination, message)` to the answer.
type Responder = Box<dyn FnMut(&str, &[u8]) -> Result<Ack, SendError>>;

thread_local! {
    static SETTINGS: RefCell<String> = RefCell::new(NO_SETTINGS.to_owned());
    static LOGS: RefCell<Vec<LogLine>> = const { RefCell::new(Vec::new()) };
    static MLLP: RefCell<Option<Responder>> = const { RefCell::new(None) };
    static MLLP_SENT: RefCell<Vec<Sent>> = const { RefCell::new(Vec::new()) };
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

/// One [`mllp::send`](crate::mllp::send) the plugin made under [`with_mllp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub destination: String,
    pub message: Vec<u8>,
    pub timeout: Duration,
}

/// Runs `call` with `responder` answering every
/// [`mllp::send`](crate::mllp::send), as the destination (through the host)
/// would: an [`Ack`] (see [`ack`]) or a [`SendError`]. [`mllp_sent`]
/// afterwards lists what was sent.
///
/// ```
/// use sluice_sdk::mllp::SendError;
/// use sluice_sdk::testing::{self, ack, with_mllp};
/// # use sluice_sdk::{Connector, Delivery, Message};
/// # struct Forward;
/// # impl Connector for Forward {
/// #     fn deliver(msg: &Message, _attempt: u32) -> Delivery {
/// #         match sluice_sdk::mllp::send("lis:2575", &msg.raw(), std::time::Duration::from_secs(5)) {
/// #             Ok(ack) if ack.code == "AA" => Delivery::Delivered,
/// #             Ok(ack) => Delivery::Reject(ack.text),
/// #             Err(err) => Delivery::Retry(err.to_string()),
/// #         }
/// #     }
/// # }
/// const ADT: &str = "MSH|^~\\&|APP|FAC|||20240101||ADT^A01|MSG1|P|2.5";
///
/// let delivery = with_mllp(|_, msg| Ok(ack(msg, "AA", "")), || testing::deliver::<Forward>(ADT, 1, "{}"));
/// assert_eq!(delivery, Delivery::Delivered);
/// assert_eq!(testing::mllp_sent()[0].destination, "lis:2575");
///
/// let down = |_: &str, _: &[u8]| Err(SendError::Unavailable("connection refused".into()));
/// assert!(matches!(with_mllp(down, || testing::deliver::<Forward>(ADT, 2, "{}")), Delivery::Retry(_)));
/// ```
///
/// A plugin that sends outside `with_mllp` panics: the test has to say how
/// the destination answers.
pub fn with_mllp<R>(responder: impl FnMut(&str, &[u8]) -> Result<Ack, SendError> + 'static, call: impl FnOnce() -> R) -> R {
    MLLP_SENT.with_borrow_mut(Vec::clear);
    let outer = MLLP.replace(Some(Box::new(responder)));
    let result = call();
    MLLP.set(outer);
    result
}

/// What the plugin sent during the last [`with_mllp`] on this thread, in
/// order.
pub fn mllp_sent() -> Vec<Sent> {
    MLLP_SENT.with_borrow(Vec::clone)
}

/// The ACK a destination sends for `message`: MSA-1 `code`, MSA-2 the
/// message's MSH-10 and MSA-3 `text`, for [`with_mllp`] responders.
pub fn ack(message: &[u8], code: &str, text: &str) -> Ack {
    let control_id = control_id(message);
    let raw = format!("MSH|^~\\&|||||||ACK|ACK{control_id}|P|2.5\rMSA|{code}|{control_id}|{text}");
    Ack { code: code.to_owned(), text: text.to_owned(), raw: raw.into_bytes() }
}

/// MSH-10 as sent, empty when the message has none.
fn control_id(message: &[u8]) -> String {
    let msh = message.split(|&b| b == b'\r' || b == b'\n').next().unwrap_or_default();
    let Some(&separator) = msh.get(3) else { return String::new() };
    // Split on MSH-1 itself, so field n is at index n - 1.
    let field = msh.split(|&b| b == separator).nth(9).unwrap_or_default();
    String::from_utf8_lossy(field).into_owned()
}

pub(crate) fn answer_mllp(destination: &str, message: &[u8], timeout: Duration) -> Result<Ack, SendError> {
    MLLP_SENT.with_borrow_mut(|sent| sent.push(Sent { destination: destination.to_owned(), message: message.to_vec(), timeout }));
    // Taken out while it runs, so a responder may itself call into the harness.
    let Some(mut responder) = MLLP.take() else {
        panic!("the plugin called mllp::send({destination:?}, ..) outside testing::with_mllp: the test has to say how the destination answers");
    };
    let answer = responder(destination, message);
    MLLP.set(Some(responder));
    answer
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
    use crate::{ErrorCode, log, mllp, settings};

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

    /// Forwards to `{"to": "host:port"}` and reports the ACK code.
    struct Forward;

    impl Connector for Forward {
        fn deliver(msg: &Message, _attempt: u32) -> Delivery {
            #[derive(Deserialize)]
            struct To {
                to: String,
            }
            let To { to } = match settings() {
                Ok(to) => to,
                Err(issue) => return Delivery::Reject(issue.text),
            };
            match mllp::send(&to, &msg.raw(), Duration::from_millis(1500)) {
                Ok(ack) => Delivery::Retry(format!("{} {} {}", ack.code, ack.text, String::from_utf8_lossy(&ack.raw))),
                Err(err) => Delivery::Retry(err.to_string()),
            }
        }
    }

    #[test]
    fn mllp_sends_go_to_the_responder_and_are_recorded() {
        let answer = with_mllp(|_, msg| Ok(ack(msg, "AE", "busy")), || deliver::<Forward>(ADT, 1, r#"{"to": "lis:2575"}"#));
        assert_eq!(answer, Delivery::Retry("AE busy MSH|^~\\&|||||||ACK|ACKX|P|2.5\rMSA|AE|X|busy".into()));
        let want = Sent { destination: "lis:2575".into(), message: ADT.as_bytes().to_vec(), timeout: Duration::from_millis(1500) };
        assert_eq!(mllp_sent(), [want]);

        let refused = |dest: &str, _: &[u8]| Err(SendError::Unavailable(format!("{dest}: connection refused")));
        let answer = with_mllp(refused, || deliver::<Forward>(ADT, 2, r#"{"to": "lis:2575"}"#));
        assert_eq!(answer, Delivery::Retry("unavailable: lis:2575: connection refused".into()));
        assert_eq!(mllp_sent().len(), 1, "each with_mllp starts a fresh record");
    }

    #[test]
    fn acks_echo_the_control_id() {
        assert_eq!(control_id(b"MSH|^~\\&|A|B|C|D|1||ADT^A01|MSG 7|P|2.5\rPID|1"), "MSG 7");
        assert_eq!(control_id(b"MSH#^~\\&#A#B#C#D#1##ADT^A01#42#P"), "42", "whatever the field separator");
        assert_eq!(control_id(b"MSH|^~\\&|A"), "");
        assert_eq!(control_id(b""), "");
    }

    #[test]
    #[should_panic(expected = "the plugin called mllp::send(\"lis:2575\", ..) outside testing::with_mllp")]
    fn sending_without_a_responder_is_a_test_mistake() {
        deliver::<Forward>(ADT, 1, r#"{"to": "lis:2575"}"#);
    }

    #[test]
    #[should_panic(expected = "not an HL7 message the engine would accept: the message does not start with an MSH segment")]
    fn refuses_text_that_is_not_a_message() {
        message("PID|1||42");
    }
}
