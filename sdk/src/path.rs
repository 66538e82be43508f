//! HL7 paths (`PID-3`, `PID-3.1`, `OBX[2]-5.1`, `PID-3[2].1.2`) and what
//! is wrong with a malformed one.
//!
//! The host checks every path a plugin reads; [`parse_path`] lets a plugin
//! check paths it was configured with up front, and refuse bad settings
//! before the first message instead of failing on each one.

use std::fmt;

use crate::Issue;

/// A parsed path; its `Display` gives back the canonical text.
pub use sluice_hl7::FieldPath;

/// A path that is not of the form `PID-3`, `PID-3.1`, `OBX[2]-5.1` or
/// `PID-3[2].1.2`. The text says what is wrong with it; in Wasm it comes
/// from the host, hence text rather than a structured error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError(pub(crate) String);

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PathError {}

impl From<sluice_hl7::PathError> for PathError {
    fn from(err: sluice_hl7::PathError) -> PathError {
        PathError(err.to_string())
    }
}

/// A bad path in plugin code is the plugin's fault, not the sender's: code
/// 207, so that `?` works in functions that return `Result<_, Issue>`.
impl From<PathError> for Issue {
    fn from(err: PathError) -> Issue {
        Issue::internal_error(err.0)
    }
}

/// Parses `path`, with the same rules the host applies.
pub fn parse_path(path: &str) -> Result<FieldPath, PathError> {
    Ok(path.parse::<FieldPath>()?)
}
