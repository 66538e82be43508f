//! The ACK rules of DESIGN section 3, checked field by field by parsing the
//! ACK back with the message's own delimiters.

use bytes::Bytes;

use super::*;
use crate::hl7::{CharsetPolicy, Message};

fn stamp() -> AckStamp {
    AckStamp { control_id: "ACK123".into(), timestamp: "20260101120000+0000".into() }
}

fn ack_of(raw: &[u8], code: AckCode, issue: Option<&Issue>) -> (Message, Bytes) {
    let msg = Message::parse(Bytes::copy_from_slice(raw), CharsetPolicy::default()).unwrap();
    let ack = build_ack(msg.header(), msg.delimiters(), msg.charset(), code, issue, &stamp());
    (msg, ack)
}

fn field(ack: &Message, path: &str) -> Vec<u8> {
    ack.raw_at(&path.parse().unwrap()).unwrap_or_default().to_vec()
}

fn parse(ack: &Bytes) -> Message {
    Message::parse(ack.clone(), CharsetPolicy::default()).expect("the ACK parses")
}

#[test]
fn mirrors_the_header_field_by_field() {
    let (msg, ack) = ack_of(
        b"MSH|^~\\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|20240101||ADT^A01^ADT_A01|CTRL-1|T|2.5.1|||AL|NE||UNICODE UTF-8\rPID|1",
        AckCode::AA,
        None,
    );
    let a = parse(&ack);
    assert_eq!(a.delimiters(), msg.delimiters());
    assert_eq!(field(&a, "MSH-2"), b"^~\\&");
    assert_eq!(field(&a, "MSH-3"), b"RECVAPP");
    assert_eq!(field(&a, "MSH-4"), b"RECVFAC");
    assert_eq!(field(&a, "MSH-5"), b"SENDAPP");
    assert_eq!(field(&a, "MSH-6"), b"SENDFAC");
    assert_eq!(field(&a, "MSH-7"), b"20260101120000+0000");
    assert_eq!(field(&a, "MSH-9"), b"ACK^A01^ACK");
    assert_eq!(field(&a, "MSH-10"), b"ACK123");
    assert_eq!(field(&a, "MSH-11"), b"T");
    assert_eq!(field(&a, "MSH-12"), b"2.5.1");
    assert_eq!(field(&a, "MSH-15"), b"");
    assert_eq!(field(&a, "MSH-18"), b"UNICODE UTF-8");
    assert_eq!(field(&a, "MSA-1"), b"AA");
    assert_eq!(field(&a, "MSA-2"), b"CTRL-1");
    assert_eq!(a.segments().count(), 2, "an AA has no ERR segment");
    assert!(ack.ends_with(b"\r"));
}

#[test]
fn uses_non_default_separators_and_keeps_control_id_bytes_exactly() {
    let raw = b"MSH*^~\\&*LAB*HOSP*EHR*HOSP*20240101**ORU^R01*ID 42  *P*2.3\rOBX*1*ST*X**v";
    let (_, ack) = ack_of(raw, AckCode::AA, None);
    assert!(ack.starts_with(b"MSH*^~\\&*EHR*HOSP*LAB*HOSP*"), "{:?}", String::from_utf8_lossy(&ack));
    let a = parse(&ack);
    assert_eq!(a.delimiters().field, b'*');
    assert_eq!(field(&a, "MSA-2"), b"ID 42  ", "trailing spaces survive");
    assert_eq!(field(&a, "MSH-9"), b"ACK^R01^ACK");
    assert!(!ack.windows(1).any(|w| w == b"|"), "no default separator leaks in");
}

#[test]
fn custom_component_separator_in_msh9() {
    let (_, ack) = ack_of(b"MSH|$~\\&|A|B|C|D|1||ADT$A08|X|P|2.4", AckCode::AA, None);
    assert_eq!(field(&parse(&ack), "MSH-9"), b"ACK$A08$ACK");
}

#[test]
fn rejection_carries_msa3_and_err_in_v25_form() {
    let issue = Issue::new(ErrorCode::REQUIRED_FIELD_MISSING, "PID-3 is required | really").at("PID-3.1");
    let (_, ack) = ack_of(b"MSH|^~\\&|A|B|C|D|1||ADT^A01|X1|P|2.5.1\rPID|1", AckCode::AR, Some(&issue));
    let a = parse(&ack);
    assert_eq!(field(&a, "MSA-1"), b"AR");
    assert_eq!(field(&a, "MSA-2"), b"X1");
    assert_eq!(a.text_at(&"MSA-3".parse().unwrap()).unwrap(), "PID-3 is required | really");
    assert_eq!(field(&a, "ERR-2"), b"PID^1^3^1^1");
    assert_eq!(field(&a, "ERR-3"), b"101^Required field missing^HL70357");
    assert_eq!(field(&a, "ERR-4"), b"E");
    assert_eq!(a.text_at(&"ERR-7".parse().unwrap()).unwrap(), "PID-3 is required | really");
}

#[test]
fn rejection_uses_err1_before_v25() {
    let issue = Issue::new(ErrorCode::REQUIRED_FIELD_MISSING, "missing").at("PID-3");
    let (_, ack) = ack_of(b"MSH|^~\\&|A|B|C|D|1||ADT^A01|X1|P|2.3\rPID|1", AckCode::AE, Some(&issue));
    let a = parse(&ack);
    assert_eq!(field(&a, "MSA-1"), b"AE");
    assert_eq!(field(&a, "ERR-1"), b"PID^1^3^101&Required field missing&HL70357");
}

#[test]
fn latin1_message_gets_latin1_text() {
    let issue = Issue::new(ErrorCode::APPLICATION_INTERNAL_ERROR, "Prüfung fehlgeschlagen");
    let (_, ack) = ack_of(b"MSH|^~\\&|A|B|C|D|1||ADT^A01|X1|P|2.5||||||8859/1", AckCode::AE, Some(&issue));
    assert!(ack.windows(3).any(|w| w == b"Pr\xfc"), "{:?}", String::from_utf8_lossy(&ack));
    let a = Message::parse(ack.clone(), CharsetPolicy::default()).unwrap();
    assert_eq!(a.text_at(&"MSA-3".parse().unwrap()).unwrap(), "Prüfung fehlgeschlagen");
}

#[test]
fn enhanced_commit_ack() {
    let (_, ack) = ack_of(b"MSH|^~\\&|A|B|C|D|1||ORM^O01|X9|P|2.5|||AL|AL", AckCode::CA, None);
    let a = parse(&ack);
    assert_eq!(field(&a, "MSA-1"), b"CA");
    assert_eq!(field(&a, "MSA-2"), b"X9");
}

#[test]
fn unreadable_message_gets_a_standard_ar() {
    let issue = Issue::from_parse_error(&crate::hl7::ParseError::NoMsh);
    let ack = build_ack_without_header(AckCode::AR, &issue, &stamp());
    let a = parse(&ack);
    assert_eq!(field(&a, "MSA-1"), b"AR");
    assert_eq!(field(&a, "MSA-2"), b"");
    assert_eq!(field(&a, "ERR-3.1"), b"100");
    assert_eq!(field(&a, "MSH-9"), b"ACK^^ACK");
}

#[test]
fn stamps_are_unique_and_short() {
    let a = AckStamp::now();
    let b = AckStamp::now();
    assert_ne!(a.control_id, b.control_id);
    assert!(a.control_id.len() <= 20, "{}", a.control_id);
    assert!(a.timestamp.len() >= 14);
}
