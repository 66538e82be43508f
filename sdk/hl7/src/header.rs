//! The MSH fields the engine itself needs: who sent the message, what it is,
//! its control ID and how it wants to be acknowledged. Each is the raw field
//! (still escaped), sliced from the message without copying.

use std::ops::Range;

use bytes::Bytes;

use super::{Delimiters, ParseError};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// MSH-2 exactly as sent.
    pub encoding_characters: Bytes,
    pub sending_application: Bytes,
    pub sending_facility: Bytes,
    pub receiving_application: Bytes,
    pub receiving_facility: Bytes,
    /// MSH-9 as sent (`ADT^A01^ADT_A01`).
    pub message_type: Bytes,
    /// MSH-9.1 and MSH-9.2.
    pub message_code: Bytes,
    pub trigger_event: Bytes,
    /// MSH-10, byte for byte: MSA-2 of the ACK must equal it.
    pub control_id: Bytes,
    pub processing_id: Bytes,
    pub version: Bytes,
    pub accept_ack_type: Bytes,
    pub application_ack_type: Bytes,
    /// MSH-18, first repetition.
    pub charset: Bytes,
    /// MSH-18 as sent, echoed in the ACK.
    pub charset_field: Bytes,
}

impl Header {
    /// Reads the fields; it does not judge them (see [`Header::check_required`]),
    /// so that even a message refused for its header is answered in kind.
    pub(crate) fn read(raw: &Bytes, msh: Range<usize>, delims: &Delimiters) -> Header {
        // Split once; MSH-n (n >= 2) is the (n-1)th piece, MSH-1 being the separator.
        let fields: Vec<&[u8]> = raw[msh].split(|&b| b == delims.field).collect();
        let field = |n: usize| -> Bytes {
            match fields.get(n - 1) {
                Some(f) => raw.slice_ref(f),
                None => Bytes::new(),
            }
        };
        let component = |f: &Bytes, i: usize| -> Bytes {
            match f.split(|&b| b == delims.component).nth(i) {
                Some(part) => f.slice_ref(part),
                None => Bytes::new(),
            }
        };
        let message_type = field(9);
        let control_id = field(10);
        let charset_field = field(18);
        let charset = match delims.repetition.and_then(|r| charset_field.iter().position(|&b| b == r)) {
            Some(end) => charset_field.slice(..end),
            None => charset_field.clone(),
        };
        Header {
            encoding_characters: field(2),
            sending_application: field(3),
            sending_facility: field(4),
            receiving_application: field(5),
            receiving_facility: field(6),
            message_code: component(&message_type, 0),
            trigger_event: component(&message_type, 1),
            message_type,
            control_id,
            processing_id: field(11),
            version: field(12),
            accept_ack_type: field(15),
            application_ack_type: field(16),
            charset,
            charset_field,
        }
    }

    /// MSH-9 and MSH-10 must be valued (blanks are not a value): without
    /// them the message can be neither routed nor acknowledged.
    pub fn check_required(&self) -> Result<(), ParseError> {
        let blank = |f: &Bytes| f.iter().all(u8::is_ascii_whitespace);
        if blank(&self.message_type) {
            return Err(ParseError::MissingField("MSH-9"));
        }
        if blank(&self.control_id) {
            return Err(ParseError::MissingField("MSH-10"));
        }
        Ok(())
    }

    /// MSH-12.1 as `(major, minor)`, e.g. `2.5.1` → (2, 5); `None` when absent.
    pub fn version_number(&self, component: u8) -> Option<(u32, u32)> {
        let first = self.version.split(|&b| b == component).next()?;
        let text = std::str::from_utf8(first).ok()?;
        let mut parts = text.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().unwrap_or("0").parse().ok()?;
        Some((major, minor))
    }
}
