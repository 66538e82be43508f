//! The HL7 parser and field-path access on any bytes and any path string:
//! no panic, and (with libFuzzer's -timeout) no blow-up on long inputs.
//! Input: a path string, a NUL, then the message.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_fuzz::hl7::{Charset, CharsetPolicy, FieldPath, Message};

fuzz_target!(|data: &[u8]| {
    let (path_text, raw) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b""[..], data),
    };
    let path = std::str::from_utf8(path_text).ok().and_then(|text| text.parse::<FieldPath>().ok());
    if let Some(path) = &path {
        // What parses prints back as a path that parses to the same thing.
        assert_eq!(path.to_string().parse::<FieldPath>().as_ref(), Ok(path));
    }
    let _ = Message::parse_header_of_partial(raw);
    for policy in [CharsetPolicy::default(), CharsetPolicy { default: Charset::Latin1, force: true }] {
        let Ok(message) = Message::parse(Bytes::copy_from_slice(raw), policy) else { continue };
        let header = message.header();
        assert!(!header.control_id.is_empty() && !header.message_type.is_empty(), "required fields are checked");
        let segments = message.segments().count();
        assert_eq!(message.segment_ids().count(), segments);
        assert!(segments >= 1);
        let paths = ["MSH-1", "MSH-2", "MSH-9.2", "MSH-10", "PID-3.1", "PID-3[2].4", "OBX[2]-5.1", "PID-5.1.2"];
        for p in paths.iter().map(|p| p.parse::<FieldPath>().expect("a valid path")).chain(path.clone()) {
            let raw_value = message.raw_at(&p);
            let text = message.text_at(&p);
            assert_eq!(raw_value.is_some(), text.is_some());
            if let Some(value) = raw_value {
                // A value is a slice of the message, never a copy across a segment end.
                assert!(!value.contains(&b'\r') && !value.contains(&b'\n'), "{p}: {value:?}");
            }
            let _ = message.repetitions(&p);
        }
    }
});
