//! Builds ACK bytes. The ACK speaks the message's own dialect: its
//! separators, MSH-11/12/18, its charset; MSA-2 is MSH-10 byte for byte.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::{AckCode, Issue};
use crate::hl7::{Charset, Delimiters, FieldPath, Header, escape};

/// The ACK's own MSH-7 and MSH-10.
#[derive(Debug, Clone)]
pub struct AckStamp {
    pub control_id: String,
    pub timestamp: String,
}

impl AckStamp {
    /// A fresh control ID and the current local time. IDs are a counter
    /// seeded from the start time, unique across restarts and ≤ 20 characters.
    pub fn now() -> AckStamp {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let _ = NEXT.compare_exchange(0, seed(), Ordering::Relaxed, Ordering::Relaxed);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let timestamp = jiff::ZonedDateTime::now().strftime("%Y%m%d%H%M%S%.3f%z").to_string();
        AckStamp { control_id: format!("SLU{id}"), timestamp }
    }
}

fn seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(1)
}

/// The ACK for a parsed header.
pub fn build_ack(header: &Header, delims: &Delimiters, charset: Charset, code: AckCode, issue: Option<&Issue>, stamp: &AckStamp) -> Bytes {
    let f = delims.field;
    let c = delims.component;
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"MSH");
    out.push(f);
    out.extend_from_slice(&header.encoding_characters);
    for field in [
        &header.receiving_application,
        &header.receiving_facility,
        &header.sending_application,
        &header.sending_facility,
    ] {
        out.push(f);
        out.extend_from_slice(field);
    }
    out.push(f);
    out.extend_from_slice(stamp.timestamp.as_bytes());
    out.push(f); // MSH-8 security
    out.push(f);
    out.extend_from_slice(b"ACK");
    out.push(c);
    out.extend_from_slice(&header.trigger_event);
    out.push(c);
    out.extend_from_slice(b"ACK");
    out.push(f);
    out.extend_from_slice(stamp.control_id.as_bytes());
    out.push(f);
    out.extend_from_slice(&header.processing_id);
    out.push(f);
    out.extend_from_slice(&header.version);
    if !header.charset_field.is_empty() {
        for _ in 13..=18 {
            out.push(f);
        }
        out.extend_from_slice(&header.charset_field);
    }
    out.push(b'\r');

    out.extend_from_slice(b"MSA");
    out.push(f);
    out.extend_from_slice(code.as_str().as_bytes());
    out.push(f);
    out.extend_from_slice(&header.control_id);
    if let Some(issue) = issue {
        out.push(f);
        out.extend_from_slice(&escape::escape(&issue.text, delims, charset));
        out.push(b'\r');
        write_err(&mut out, header, delims, charset, issue);
    }
    out.push(b'\r');
    Bytes::from(out)
}

/// An AR for a frame whose MSH could not be read at all: standard
/// separators, empty MSA-2 (there is no control ID to echo).
pub fn build_ack_without_header(code: AckCode, issue: &Issue, stamp: &AckStamp) -> Bytes {
    let header = Header { encoding_characters: Bytes::from_static(b"^~\\&"), processing_id: Bytes::from_static(b"P"), version: Bytes::from_static(b"2.5.1"), ..Header::default() };
    build_ack(&header, &Delimiters::default(), Charset::Ascii, code, Some(issue), stamp)
}

/// ERR segment: v2.5 and later use ERR-2 (location), ERR-3 (code), ERR-4
/// (severity) and ERR-7 (diagnostic text); earlier versions only ERR-1.
fn write_err(out: &mut Vec<u8>, header: &Header, delims: &Delimiters, charset: Charset, issue: &Issue) {
    let f = delims.field;
    let c = delims.component;
    let before_2_5 = header.version_number(c).is_some_and(|v| v < (2, 5));
    out.extend_from_slice(b"ERR");
    out.push(f);
    if before_2_5 {
        // ELD: segment^sequence^field^code&text&HL70357
        if let Some(loc) = &issue.location {
            write_location(out, loc, c, false);
        } else {
            out.extend([c, c]);
        }
        out.push(c);
        write_coded(out, issue, delims.subcomponent, delims, charset);
        return;
    }
    out.push(f);
    if let Some(loc) = &issue.location {
        write_location(out, loc, c, true);
    }
    out.push(f);
    write_coded(out, issue, Some(c), delims, charset);
    out.push(f);
    out.push(b'E');
    for _ in 5..=7 {
        out.push(f);
    }
    out.extend_from_slice(&escape::escape(&issue.text, delims, charset));
}

/// ERL (v2.5+: with repetition, component, subcomponent) or the head of ELD.
fn write_location(out: &mut Vec<u8>, loc: &FieldPath, c: u8, full: bool) {
    out.extend_from_slice(&loc.segment);
    out.push(c);
    out.extend_from_slice(loc.occurrence.to_string().as_bytes());
    out.push(c);
    out.extend_from_slice(loc.field.to_string().as_bytes());
    if full {
        out.push(c);
        out.extend_from_slice(loc.repetition.to_string().as_bytes());
        for part in [loc.component, loc.subcomponent].into_iter().map_while(|p| p) {
            out.push(c);
            out.extend_from_slice(part.to_string().as_bytes());
        }
    }
}

/// `code^text^HL70357` with the given separator (absent: code only).
fn write_coded(out: &mut Vec<u8>, issue: &Issue, sep: Option<u8>, delims: &Delimiters, charset: Charset) {
    out.extend_from_slice(issue.code.0.to_string().as_bytes());
    if let Some(sep) = sep {
        out.push(sep);
        out.extend_from_slice(&escape::escape(issue.code.text(), delims, charset));
        out.push(sep);
        out.extend_from_slice(b"HL70357");
    }
}
