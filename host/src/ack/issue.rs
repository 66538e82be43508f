//! What went wrong with a message, in the terms an ACK reports it: MSA-3
//! text, ERR-3 code (HL7 table 0357) and ERR-2 location.

pub use crate::hl7::ErrorCode;
use crate::hl7::{FieldPath, ParseError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Human-readable reason, sent in MSA-3 and ERR-7.
    pub text: String,
    pub code: ErrorCode,
    /// Where in the message, sent in ERR-2 (v2.5+) or ERR-1 (older versions).
    pub location: Option<FieldPath>,
}

impl Issue {
    pub fn new(code: ErrorCode, text: impl Into<String>) -> Issue {
        Issue { text: text.into(), code, location: None }
    }

    pub fn at(mut self, location: &str) -> Issue {
        self.location = location.parse().ok();
        self
    }

    /// The reason an unparseable frame is rejected.
    pub fn from_parse_error(err: &ParseError) -> Issue {
        let issue = Issue::new(
            match err {
                ParseError::Empty | ParseError::NoMsh => ErrorCode::SEGMENT_SEQUENCE_ERROR,
                ParseError::BadEncodingCharacters => ErrorCode::DATA_TYPE_ERROR,
                ParseError::MissingField(_) => ErrorCode::REQUIRED_FIELD_MISSING,
                ParseError::UnknownCharset(_) => ErrorCode::TABLE_VALUE_NOT_FOUND,
            },
            err.to_string(),
        );
        match err {
            ParseError::Empty | ParseError::NoMsh => issue.at("MSH-1"),
            ParseError::BadEncodingCharacters => issue.at("MSH-2"),
            ParseError::MissingField(field) => issue.at(field),
            ParseError::UnknownCharset(_) => issue.at("MSH-18"),
        }
    }
}
