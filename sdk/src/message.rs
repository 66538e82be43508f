//! The message being handled. In Wasm every read is a call into the host,
//! which parsed the message once; natively (unit tests) the same API reads a
//! message parsed by `sluice-hl7`, so plugin code runs unchanged in both.

use std::fmt;

use crate::{PathError, backend};

/// One HL7 v2 message, read by path. A plugin only ever sees `&Message`.
// `repr(transparent)` lets the Wasm glue view the host's borrowed resource
// as a `&Message` without copying or wrapping it (see `wasm.rs`).
#[repr(transparent)]
pub struct Message(pub(crate) backend::Message);

/// The MSH fields most plugins look at, decoded to text. Each is the first
/// component (`MSH-3.1`, ...) and empty when not valued; read whole fields
/// with [`Message::get`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// MSH-3.1
    pub sending_application: String,
    /// MSH-4.1
    pub sending_facility: String,
    /// MSH-5.1
    pub receiving_application: String,
    /// MSH-6.1
    pub receiving_facility: String,
    /// MSH-7.1, as sent (`20240101120000+0100`).
    pub timestamp: String,
    /// MSH-9.1 (`ADT`)
    pub message_code: String,
    /// MSH-9.2 (`A01`)
    pub trigger_event: String,
    /// MSH-9.3 (`ADT_A01`)
    pub message_structure: String,
    /// MSH-10
    pub control_id: String,
    /// MSH-11.1 (`P`, `T`, `D`)
    pub processing_id: String,
    /// MSH-12.1 (`2.5.1`)
    pub version: String,
}

/// A segment's place in the message; it displays as `OBX[2]`, so
/// `format!("{seg}-5")` is the path of its fifth field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRef {
    pub id: String,
    /// 1 for the first segment with this ID, 2 for the second, ...
    pub occurrence: u32,
}

impl fmt::Display for SegmentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.id, self.occurrence)
    }
}

impl Message {
    /// The message exactly as received, without its MLLP framing.
    pub fn raw(&self) -> Vec<u8> {
        self.0.raw()
    }

    pub fn header(&self) -> Header {
        self.0.header()
    }

    /// The text at an HL7 path, escape sequences decoded and the message's
    /// charset applied. `None` when the segment, field, repetition or
    /// component is absent or empty (HL7: not valued). Segment occurrences
    /// and repetitions are 1-based and default to 1.
    pub fn get(&self, path: &str) -> Result<Option<String>, PathError> {
        self.0.get(path)
    }

    /// The same part as [`Message::get`], as sent: still escaped and in the
    /// message's charset.
    pub fn get_raw(&self, path: &str) -> Result<Option<Vec<u8>>, PathError> {
        self.0.get_raw(path)
    }

    /// How many repetitions the field at `path` has (`PID-3` with two
    /// identifiers: 2); 0 when it is absent or empty.
    pub fn repetitions(&self, path: &str) -> Result<u32, PathError> {
        self.0.repetitions(path)
    }

    /// How many segments have this ID (`OBX`).
    pub fn count(&self, segment_id: &str) -> u32 {
        self.0.count(segment_id)
    }

    /// Every segment in message order.
    pub fn segments(&self) -> Vec<SegmentRef> {
        self.0.segments()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The header identifies the message without dumping patient data.
        let header = self.header();
        f.debug_struct("Message")
            .field("type", &format_args!("{}^{}", header.message_code, header.trigger_event))
            .field("control_id", &header.control_id)
            .finish()
    }
}
