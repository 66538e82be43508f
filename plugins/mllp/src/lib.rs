//! Stock connector `mllp`: forwards each message, as received, to another
//! MLLP system and turns its ACK into the delivery result.
//!
//! Settings:
//!
//! | key           | default   | meaning                                                        |
//! |---------------|-----------|----------------------------------------------------------------|
//! | `destination` | required  | `host:port` of the receiver (`[::1]:2575` for IPv6)            |
//! | `ack_timeout` | `"30s"`   | how long to wait for the ACK: `"500ms"`, `"2m"`, or milliseconds |
//! | `on_ae`       | `"retry"` | what an AE (CE) answer does: `"retry"` or `"dead_letter"`      |
//!
//! The engine does the networking (one persistent connection per
//! destination) and reaches only destinations granted to the plugin:
//!
//! ```toml
//! [connectors.lis]
//! plugin = "mllp"
//! config = { destination = "lis.example:2575", ack_timeout = "10s" }
//!
//! [plugins.mllp]
//! allow.mllp = ["lis.example:2575"]
//! ```
//!
//! | answer                                   | delivery                           |
//! |------------------------------------------|------------------------------------|
//! | AA, CA                                   | delivered                          |
//! | AR, CR                                   | reject (dead letter), with the ACK's text |
//! | AE, CE                                   | retry, or reject with `on_ae = "dead_letter"` |
//! | any other MSA-1                          | retry                              |
//! | no connection, or no ACK in time         | retry                              |
//! | an ACK for another message, or no MSA    | retry: never counted as delivered  |
//! | destination not granted, or no MSH-10    | reject                             |
//!
//! Settings that cannot be used (a missing or unknown key, a destination
//! that is not `host:port`) reject every message with a text naming the
//! setting.

use std::time::Duration;

use serde::Deserialize;
use sluice_sdk::mllp::{self, Ack, SendError};
use sluice_sdk::{Connector, Delivery, Issue, Message};

pub struct Mllp;

sluice_sdk::export_connector!(Mllp);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    destination: String,
    #[serde(default = "default_ack_timeout", deserialize_with = "sluice_sdk::settings::duration")]
    ack_timeout: Duration,
    #[serde(default)]
    on_ae: OnAe,
}

/// What an application error (AE, CE) does. Retrying is the default: AE
/// usually means the receiver could not process the message now (a lock, a
/// database down), and the outbox keeps order while it waits.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
enum OnAe {
    #[default]
    Retry,
    DeadLetter,
}

fn default_ack_timeout() -> Duration {
    Duration::from_secs(30)
}

impl Connector for Mllp {
    fn deliver(msg: &Message, _attempt: u32) -> Delivery {
        let settings = match Settings::read() {
            Ok(settings) => settings,
            Err(issue) => return Delivery::Reject(issue.text),
        };
        let destination = &settings.destination;
        match mllp::send(destination, &msg.raw(), settings.ack_timeout) {
            Ok(ack) => judge(&ack, destination, settings.on_ae),
            Err(SendError::Denied(why)) => Delivery::Reject(format!("forwarding to {destination} is not allowed: {why}")),
            Err(SendError::Unavailable(why)) => Delivery::Retry(format!("{destination} unavailable: {why}")),
            Err(SendError::BadAck(why)) => {
                Delivery::Retry(format!("{destination} sent no valid ACK for the message, so it is not counted as delivered: {why}"))
            }
        }
    }
}

impl Settings {
    fn read() -> Result<Settings, Issue> {
        let settings: Settings = sluice_sdk::settings()?;
        check_destination(&settings.destination).map_err(|why| Issue::invalid_settings(format_args!("`destination`: {why}")))?;
        if settings.ack_timeout.is_zero() {
            return Err(Issue::invalid_settings("`ack_timeout`: must be more than 0"));
        }
        Ok(settings)
    }
}

/// `host:port`, with an IPv6 address in brackets. The host resolves names;
/// this only catches what could never connect, such as a URL or a missing
/// port.
fn check_destination(destination: &str) -> Result<(), String> {
    let shape = || format!("`{destination}` is not host:port (like lis.example:2575 or [::1]:2575)");
    let (host, port) = destination.rsplit_once(':').ok_or_else(shape)?;
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ipv6) => !ipv6.is_empty() && ipv6.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.'),
        None => !host.is_empty() && host.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.' || c == '_'),
    };
    if !host_ok {
        return Err(shape());
    }
    match port.parse::<u16>() {
        Ok(1..) => Ok(()),
        _ => Err(format!("`{port}` in `{destination}` is not a port (1 to 65535)")),
    }
}

/// The delivery an ACK stands for (MSA-1; HL7 table 0008). Original and
/// enhanced mode codes are read alike: for a forwarder, the receiver's
/// commit (CA) is as good as the application's.
fn judge(ack: &Ack, destination: &str, on_ae: OnAe) -> Delivery {
    let code = ack.code.as_str();
    let reason = if ack.text.is_empty() { "no reason given" } else { &ack.text };
    match code {
        "AA" | "CA" => Delivery::Delivered,
        "AR" | "CR" => Delivery::Reject(format!("{destination} rejected the message ({code}): {reason}")),
        "AE" | "CE" => {
            let text = format!("{destination} could not process the message ({code}): {reason}");
            match on_ae {
                OnAe::Retry => Delivery::Retry(text),
                OnAe::DeadLetter => Delivery::Reject(text),
            }
        }
        _ => Delivery::Retry(format!(
            "{destination} answered with MSA-1 `{code}`, which is not an acknowledgment code (AA, AE, AR, CA, CE or CR), so the message is not counted as delivered"
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sluice_sdk::Delivery;
    use sluice_sdk::mllp::SendError;
    use sluice_sdk::testing::{self, ack, mllp_sent, with_mllp};

    use super::Mllp;

    const ADT: &str = "MSH|^~\\&|ADMIT|MAIN|LIS|LAB|20240101120000||ADT^A01|MSG1|P|2.5\nPID|1||42";
    const SETTINGS: &str = r#"{"destination": "lis.example:2575"}"#;

    /// Delivers ADT with these settings to a receiver answering `code` and `text`.
    fn answered(code: &'static str, text: &'static str, settings: &str) -> Delivery {
        with_mllp(move |_, msg| Ok(ack(msg, code, text)), || testing::deliver::<Mllp>(ADT, 1, settings))
    }

    fn failed(err: SendError) -> Delivery {
        with_mllp(move |_, _| Err(err.clone()), || testing::deliver::<Mllp>(ADT, 1, SETTINGS))
    }

    #[track_caller]
    fn assert_bad_settings(settings: &str, says: &str) {
        let delivery = testing::deliver::<Mllp>(ADT, 1, settings);
        let Delivery::Reject(text) = delivery else { panic!("expected a reject for {settings}, got {delivery:?}") };
        assert!(text.starts_with("invalid plugin settings: "), "{text}");
        assert!(text.contains(says), "`{text}` should say `{says}`");
    }

    #[test]
    fn forwards_the_raw_message_with_the_timeout() {
        assert_eq!(answered("AA", "", SETTINGS), Delivery::Delivered);
        let sent = mllp_sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].destination, "lis.example:2575");
        assert_eq!(sent[0].message, b"MSH|^~\\&|ADMIT|MAIN|LIS|LAB|20240101120000||ADT^A01|MSG1|P|2.5\rPID|1||42");
        assert_eq!(sent[0].timeout, Duration::from_secs(30), "the default");

        answered("AA", "", r#"{"destination": "[::1]:2575", "ack_timeout": "1500ms"}"#);
        assert_eq!((mllp_sent()[0].destination.as_str(), mllp_sent()[0].timeout), ("[::1]:2575", Duration::from_millis(1500)));
        answered("AA", "", r#"{"destination": "10.0.0.5:2575", "ack_timeout": 250}"#);
        assert_eq!(mllp_sent()[0].timeout, Duration::from_millis(250), "a number is milliseconds");
    }

    #[test]
    fn accepts_are_delivered() {
        assert_eq!(answered("AA", "", SETTINGS), Delivery::Delivered);
        assert_eq!(answered("CA", "", SETTINGS), Delivery::Delivered);
    }

    #[test]
    fn rejects_are_dead_lettered_with_the_receivers_text() {
        let want = "lis.example:2575 rejected the message (AR): unknown patient";
        assert_eq!(answered("AR", "unknown patient", SETTINGS), Delivery::Reject(want.into()));
        let want = "lis.example:2575 rejected the message (CR): no reason given";
        assert_eq!(answered("CR", "", SETTINGS), Delivery::Reject(want.into()));
    }

    #[test]
    fn errors_retry_or_dead_letter_per_on_ae() {
        let text = "lis.example:2575 could not process the message (AE): database locked";
        assert_eq!(answered("AE", "database locked", SETTINGS), Delivery::Retry(text.into()));
        let retry = r#"{"destination": "lis.example:2575", "on_ae": "retry"}"#;
        assert_eq!(answered("AE", "database locked", retry), Delivery::Retry(text.into()));
        let dead_letter = r#"{"destination": "lis.example:2575", "on_ae": "dead_letter"}"#;
        assert_eq!(answered("AE", "database locked", dead_letter), Delivery::Reject(text.into()));
        let text = "lis.example:2575 could not process the message (CE): no reason given";
        assert_eq!(answered("CE", "", dead_letter), Delivery::Reject(text.into()));
    }

    #[test]
    fn an_unknown_code_is_never_a_success() {
        for code in ["XX", "aa", "", "AA "] {
            let Delivery::Retry(text) = answered(code, "", SETTINGS) else { panic!("{code:?} must retry") };
            assert!(text.contains(&format!("MSA-1 `{code}`, which is not an acknowledgment code")), "{text}");
        }
    }

    #[test]
    fn send_errors() {
        let want = "lis.example:2575 unavailable: connection refused";
        assert_eq!(failed(SendError::Unavailable("connection refused".into())), Delivery::Retry(want.into()));
        let want = "lis.example:2575 sent no valid ACK for the message, so it is not counted as delivered: MSA-2 is MSG9, expected MSG1";
        assert_eq!(failed(SendError::BadAck("MSA-2 is MSG9, expected MSG1".into())), Delivery::Retry(want.into()));
        let want = "forwarding to lis.example:2575 is not allowed: not in allow.mllp";
        assert_eq!(failed(SendError::Denied("not in allow.mllp".into())), Delivery::Reject(want.into()));
    }

    /// Outside `with_mllp`, so any send would panic: bad settings send nothing.
    #[test]
    fn refuses_settings_it_cannot_use() {
        assert_bad_settings("{}", "missing field `destination`");
        assert_bad_settings(r#"{"destination": "lis:2575", "timeout": "5s"}"#, "unknown field `timeout`");
        assert_bad_settings(r#"{"destination": 2575}"#, "`destination`: invalid type: integer `2575`");
        assert_bad_settings(r#"{"destination": "lis.example"}"#, "`destination`: `lis.example` is not host:port");
        assert_bad_settings(r#"{"destination": "mllp://lis:2575"}"#, "`destination`: `mllp://lis:2575` is not host:port");
        assert_bad_settings(r#"{"destination": ":2575"}"#, "is not host:port");
        assert_bad_settings(r#"{"destination": "::1:2575"}"#, "is not host:port");
        assert_bad_settings(r#"{"destination": "lis:0"}"#, "`destination`: `0` in `lis:0` is not a port");
        assert_bad_settings(r#"{"destination": "lis:70000"}"#, "`70000` in `lis:70000` is not a port");
        assert_bad_settings(r#"{"destination": "lis:2575", "ack_timeout": "soon"}"#, "`ack_timeout`: `soon` is not a duration");
        assert_bad_settings(r#"{"destination": "lis:2575", "ack_timeout": 0}"#, "`ack_timeout`: must be more than 0");
        assert_bad_settings(r#"{"destination": "lis:2575", "on_ae": "ignore"}"#, "`on_ae`: unknown variant `ignore`, expected `retry` or `dead_letter`");
    }
}
