//! What plugins answer with: the Rust side of `wit/types.wit`.
//!
//! These are the SDK's own types rather than the ones wit-bindgen generates,
//! so that plugin code (and its unit tests) compile the same on every target.

use std::fmt;

pub use sluice_hl7::ErrorCode;

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
