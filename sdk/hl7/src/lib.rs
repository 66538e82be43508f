//! HL7 v2 parsing (chapter 2): delimiters, segments, escapes, charsets and
//! field access by path. This is the API the pipeline and plugins read with.

mod charset;
mod delimiters;
mod error_code;
pub mod escape;
mod header;
mod message;
mod path;

pub use charset::{Charset, CharsetPolicy};
pub use delimiters::Delimiters;
pub use error_code::ErrorCode;
pub use header::Header;
pub use message::Message;
pub use path::{FieldPath, PathError};

/// Why a frame is not a usable HL7 message. Each maps to an HL7 error code
/// (table 0357) and a location for the ERR segment of the AR it causes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the message is empty")]
    Empty,
    #[error("the message does not start with an MSH segment")]
    NoMsh,
    #[error("MSH-1/MSH-2 do not declare usable delimiters")]
    BadEncodingCharacters,
    #[error("required field {0} is empty")]
    MissingField(&'static str),
    #[error("unsupported character set `{0}` in MSH-18")]
    UnknownCharset(String),
}
