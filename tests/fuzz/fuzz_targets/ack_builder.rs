//! The ACK builder: for any message whose MSH can be read, each ACK parses
//! with the message's own separators, MSA-2 is MSH-10 byte for byte, MSH-3..6
//! are the message's MSH-5, 6, 3, 4, and an error text (any text) comes back
//! from MSA-3 as it was written, without breaking the segment structure.
//! Input: the error text, a NUL, then the message.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_fuzz::ack::{AckCode, AckStamp, ErrorCode, Issue, build_ack};
use sluice_fuzz::hl7::{Charset, CharsetPolicy, Delimiters, Header, Message, escape};

fuzz_target!(|data: &[u8]| {
    let (text, raw) = match data.iter().position(|&b| b == 0) {
        Some(at) => (String::from_utf8_lossy(&data[..at]).into_owned(), &data[at + 1..]),
        None => (String::new(), data),
    };
    let mut headers: Vec<(Header, Delimiters, Charset)> = Vec::new();
    if let Ok(message) = Message::parse(Bytes::copy_from_slice(raw), CharsetPolicy::default()) {
        headers.push((message.header().clone(), *message.delimiters(), message.charset()));
    }
    // A refused frame is answered from its MSH alone.
    if let Some((header, delims)) = Message::parse_header_of_partial(raw) {
        headers.push((header, delims, Charset::Utf8));
    }
    let stamp = AckStamp { control_id: "SLU1".into(), timestamp: "20260101120000".into() };
    for (header, delims, charset) in &headers {
        for (code, issue) in [(AckCode::AA, None), (AckCode::AR, Some(Issue::new(ErrorCode::APPLICATION_INTERNAL_ERROR, text.clone())))] {
            let ack = build_ack(header, delims, *charset, code, issue.as_ref(), &stamp);
            let (ack_header, ack_delims) = Message::parse_header_of_partial(&ack).expect("the ACK's MSH reads");
            assert_eq!(&ack_delims, delims, "the ACK uses the message's separators");
            assert_eq!(ack_header.sending_application, header.receiving_application);
            assert_eq!(ack_header.sending_facility, header.receiving_facility);
            assert_eq!(ack_header.receiving_application, header.sending_application);
            assert_eq!(ack_header.receiving_facility, header.sending_facility);
            let parsed = Message::parse(ack.clone(), CharsetPolicy { default: *charset, force: true }).expect("the ACK parses");
            let ids: Vec<&[u8]> = parsed.segment_ids().collect();
            let expected: &[&[u8]] = if issue.is_some() { &[b"MSH", b"MSA", b"ERR"] } else { &[b"MSH", b"MSA"] };
            assert_eq!(ids, expected, "{ack:?}");
            let msa = parsed.segments().nth(1).expect("MSA");
            let msa: Vec<&[u8]> = msa.split(|&b| b == delims.field).collect();
            assert_eq!(msa[1], code.as_str().as_bytes());
            assert_eq!(msa[2], &header.control_id[..], "MSA-2 is MSH-10 byte for byte");
            if issue.is_some() && delims.escape.is_some() {
                assert_eq!(msa.len(), 4, "the text is one field: {ack:?}");
                assert_eq!(escape::unescape(msa[3], delims, *charset), representable(&text, *charset));
            }
        }
    }
});

/// The text as the charset can carry it: what it cannot hold becomes `?`.
fn representable(text: &str, charset: Charset) -> String {
    text.chars().map(|c| if charset.holds(c) { c } else { '?' }).collect()
}
