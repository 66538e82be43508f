//! HL7 table 0357, message error condition codes: what ERR-3 of an ACK
//! says went wrong. Shared by the engine's ACK builder and the plugin SDK.

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

    /// The table's text for ERR-3.2.
    pub fn text(self) -> &'static str {
        match self.0 {
            0 => "Message accepted",
            100 => "Segment sequence error",
            101 => "Required field missing",
            102 => "Data type error",
            103 => "Table value not found",
            200 => "Unsupported message type",
            201 => "Unsupported event code",
            202 => "Unsupported processing id",
            203 => "Unsupported version id",
            204 => "Unknown key identifier",
            205 => "Duplicate key identifier",
            206 => "Application record locked",
            _ => "Application internal error",
        }
    }

}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
