//! What plugins answer with: the Rust side of `wit/types.wit`.
//!
//! These are the SDK's own types rather than the ones wit-bindgen generates,
//! so that plugin code (and its unit tests) compile the same on every target.

use std::fmt;

/// An HL7 error condition code (table 0357). The host puts it in ERR-3 of
/// the ACK. Codes outside the table are passed through unchanged, so a
/// site-specific code can be used with `ErrorCode(…)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    /// 100: a segment is missing, out of order or repeated where it may not be.
    pub const SEGMENT_SEQUENCE_ERROR: ErrorCode = ErrorCode(100);
    /// 101: a required field is missing or empty.
    pub const REQUIRED_FIELD_MISSING: ErrorCode = ErrorCode(101);
    /// 102: a field's value does not fit its data type.
    pub const DATA_TYPE_ERROR: ErrorCode = ErrorCode(102);
    /// 103: a coded value is not in its table.
    pub const TABLE_VALUE_NOT_FOUND: ErrorCode = ErrorCode(103);
    /// 200: the message type (MSH-9.1) is not supported.
    pub const UNSUPPORTED_MESSAGE_TYPE: ErrorCode = ErrorCode(200);
    /// 201: the trigger event (MSH-9.2) is not supported.
    pub const UNSUPPORTED_EVENT_CODE: ErrorCode = ErrorCode(201);
    /// 202: the processing ID (MSH-11) is not supported.
    pub const UNSUPPORTED_PROCESSING_ID: ErrorCode = ErrorCode(202);
    /// 203: the version (MSH-12) is not supported.
    pub const UNSUPPORTED_VERSION_ID: ErrorCode = ErrorCode(203);
    /// 204: a key (patient, order, ...) is unknown to the receiver.
    pub const UNKNOWN_KEY_IDENTIFIER: ErrorCode = ErrorCode(204);
    /// 205: a key that must be new already exists.
    pub const DUPLICATE_KEY_IDENTIFIER: ErrorCode = ErrorCode(205);
    /// 206: the record is locked; the sender may retry.
    pub const APPLICATION_RECORD_LOCKED: ErrorCode = ErrorCode(206);
    /// 207: anything else that went wrong on our side, including bad plugin
    /// settings.
    pub const APPLICATION_INTERNAL_ERROR: ErrorCode = ErrorCode(207);
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a message is refused or could not be handled. The host turns it into
/// the ACK: `text` goes to MSA-3 and ERR-7, `code` to ERR-3 and `location`
/// to ERR-2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Human-readable reason, shown to the sender.
    pub text: String,
    pub code: ErrorCode,
    /// An HL7 path such as `PID-3` or `OBX[2]-5.1`.
    pub location: Option<String>,
}

impl Issue {
    pub fn new(code: ErrorCode, text: impl Into<String>) -> Issue {
        Issue { text: text.into(), code, location: None }
    }

    /// Points the issue at an HL7 path, so the sender sees where in ERR-2.
    pub fn at(mut self, location: impl Into<String>) -> Issue {
        self.location = Some(location.into());
        self
    }

    /// Code 101 at `path`: "required field PID-3 is missing or empty".
    pub fn required_field_missing(path: &str) -> Issue {
        Issue::new(ErrorCode::REQUIRED_FIELD_MISSING, format!("required field {path} is missing or empty")).at(path)
    }

    /// Code 207: the plugin's settings (the `config` table next to
    /// `plugin = "..."`) cannot be used; `reason` says why.
    pub fn invalid_settings(reason: impl fmt::Display) -> Issue {
        Issue::new(ErrorCode::APPLICATION_INTERNAL_ERROR, format!("invalid plugin settings: {reason}"))
    }

    /// Code 207: something on our side went wrong, not in the message.
    pub fn internal_error(text: impl Into<String>) -> Issue {
        Issue::new(ErrorCode::APPLICATION_INTERNAL_ERROR, text)
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {}", self.text, self.code)?;
        if let Some(location) = &self.location {
            write!(f, " at {location}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for Issue {}

/// A validator's decision about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The message may be stored and routed.
    Accept,
    /// The message is wrong and must not be resent as is: the sender gets AR.
    Reject(Issue),
    /// The message could not be judged now; the sender gets AE and may retry.
    Error(Issue),
}

/// A connector's result for one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The destination has the message; it leaves the outbox.
    Delivered,
    /// A passing failure: the host tries again after a back-off.
    Retry(String),
    /// The destination refuses this message for good: it is dead-lettered.
    Reject(String),
}
