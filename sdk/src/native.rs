//! The native side of the host, for unit tests: the message is parsed by
//! `sluice-hl7` (the parser the engine itself uses), and settings and log
//! lines go through the test harness ([`crate::testing`]).

use std::collections::HashMap;
use std::time::Duration;

use sluice_hl7::{CharsetPolicy, FieldPath};

use crate::log::Level;
use crate::mllp::{Ack, SendError};
use crate::{Header, PathError, SegmentRef, parse_path, testing};

pub(crate) struct Message(sluice_hl7::Message);

impl Message {
    pub(crate) fn parse(text: &str) -> Result<Message, sluice_hl7::ParseError> {
        sluice_hl7::Message::parse(text.to_owned().into(), CharsetPolicy::default()).map(Message)
    }

    pub(crate) fn raw(&self) -> Vec<u8> {
        self.0.raw().to_vec()
    }

    pub(crate) fn header(&self) -> Header {
        let first = |field: &str| self.text(&format!("MSH-{field}"));
        Header {
            sending_application: first("3.1"),
            sending_facility: first("4.1"),
            receiving_application: first("5.1"),
            receiving_facility: first("6.1"),
            timestamp: first("7.1"),
            message_code: first("9.1"),
            trigger_event: first("9.2"),
            message_structure: first("9.3"),
            control_id: first("10"),
            processing_id: first("11.1"),
            version: first("12.1"),
        }
    }

    pub(crate) fn get(&self, path: &str) -> Result<Option<String>, PathError> {
        Ok(self.0.text_at(&parse_path(path)?).filter(|text| !text.is_empty()))
    }

    pub(crate) fn get_raw(&self, path: &str) -> Result<Option<Vec<u8>>, PathError> {
        Ok(self.0.raw_at(&parse_path(path)?).filter(|raw| !raw.is_empty()).map(<[u8]>::to_vec))
    }

    pub(crate) fn repetitions(&self, path: &str) -> Result<u32, PathError> {
        Ok(count(self.0.repetitions(&parse_path(path)?)))
    }

    pub(crate) fn count(&self, segment_id: &str) -> u32 {
        count(self.0.segment_ids().filter(|id| *id == segment_id.as_bytes()).count())
    }

    pub(crate) fn segments(&self) -> Vec<SegmentRef> {
        let mut seen: HashMap<&[u8], u32> = HashMap::new();
        self.0
            .segment_ids()
            .map(|id| {
                let occurrence = seen.entry(id).or_default();
                *occurrence += 1;
                SegmentRef { id: String::from_utf8_lossy(id).into_owned(), occurrence: *occurrence }
            })
            .collect()
    }

    /// A header field's text, empty when not valued.
    fn text(&self, path: &str) -> String {
        let path: FieldPath = path.parse().expect("header paths are valid");
        self.0.text_at(&path).unwrap_or_default()
    }
}

/// The WIT interface counts in `u32`; no test message comes near it.
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub(crate) fn settings_json() -> String {
    testing::current_settings()
}

pub(crate) fn log(level: Level, text: &str) {
    testing::capture_log(level, text);
}

pub(crate) fn mllp_send(destination: &str, message: &[u8], timeout_ms: u32) -> Result<Ack, SendError> {
    testing::answer_mllp(destination, message, Duration::from_millis(timeout_ms.into()))
}

#[cfg(test)]
mod tests {
    use crate::{Header, SegmentRef, testing};

    const ORU: &str = "MSH|^~\\&|LAB^1.2.3^ISO|MAIN|EHR|WARD|20240101120000+0100||ORU^R01^ORU_R01|MSG1|P^T|2.5.1^INT\n\
                       PID|1||12345^^^HOSP^MR~67890^^^LAB^PI||O\\T\\Brien^Pat||\n\
                       OBX|1|NM|GLU||5.4\n\
                       OBX|2|ST|NOTE||high^^\n\
                       NTE|1";

    #[test]
    fn header_fields_are_first_components_decoded() {
        let header = testing::message(ORU).header();
        let want = Header {
            sending_application: "LAB".into(),
            sending_facility: "MAIN".into(),
            receiving_application: "EHR".into(),
            receiving_facility: "WARD".into(),
            timestamp: "20240101120000+0100".into(),
            message_code: "ORU".into(),
            trigger_event: "R01".into(),
            message_structure: "ORU_R01".into(),
            control_id: "MSG1".into(),
            processing_id: "P".into(),
            version: "2.5.1".into(),
        };
        assert_eq!(header, want);
    }

    #[test]
    fn get_is_none_when_absent_or_empty() {
        let msg = testing::message(ORU);
        let get = |path: &str| msg.get(path).unwrap();
        assert_eq!(get("PID-3[2].1").as_deref(), Some("67890"));
        assert_eq!(get("PID-5.1").as_deref(), Some("O&Brien"), "escapes decoded");
        assert_eq!(get("OBX[2]-5").as_deref(), Some("high^^"), "a whole field, components and all");
        assert_eq!(get("PID-2"), None, "empty field");
        assert_eq!(get("OBX[2]-5.2"), None, "empty component");
        assert_eq!(get("PID-7"), None, "empty last field");
        assert_eq!(get("PID-30"), None, "field beyond the segment");
        assert_eq!(get("OBX[3]-5"), None, "absent occurrence");
        assert_eq!(get("ZZZ-1"), None, "absent segment");
    }

    #[test]
    fn get_raw_keeps_escapes() {
        let msg = testing::message(ORU);
        assert_eq!(msg.get_raw("PID-5.1").unwrap().as_deref(), Some(&b"O\\T\\Brien"[..]));
        assert_eq!(msg.get_raw("PID-2").unwrap(), None);
    }

    #[test]
    fn counts_repetitions_and_segments() {
        let msg = testing::message(ORU);
        assert_eq!([msg.repetitions("PID-3"), msg.repetitions("PID-5"), msg.repetitions("PID-2")].map(Result::unwrap), [2, 1, 0]);
        assert_eq!([msg.count("OBX"), msg.count("PID"), msg.count("ZZZ"), msg.count("OB")], [2, 1, 0, 0]);
        let segments: Vec<String> = msg.segments().iter().map(SegmentRef::to_string).collect();
        assert_eq!(segments, ["MSH[1]", "PID[1]", "OBX[1]", "OBX[2]", "NTE[1]"]);
    }

    #[test]
    fn refuses_malformed_paths() {
        let msg = testing::message(ORU);
        let err = msg.get("PID3").unwrap_err();
        assert!(err.to_string().contains("invalid HL7 path `PID3`"), "{err}");
        assert!(msg.get_raw("pid-3").is_err());
        assert!(msg.repetitions("PID-0").is_err());
    }

    #[test]
    fn raw_is_the_message_as_parsed() {
        let msg = testing::message("MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5\nPID|1");
        assert_eq!(msg.raw(), b"MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5\rPID|1");
    }
}
