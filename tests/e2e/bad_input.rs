//! What a sender sees when it sends something other than clean MLLP frames
//! of valid HL7 (DESIGN §3, framing and ACK rules): stray bytes, broken
//! headers, frames too large or too slow, idle and surplus connections,
//! unusual splits and separators. Every test starts its own server with small
//! limits, waits on what the server sends (an ACK, or the connection closing
//! within a bounded read timeout) rather than on fixed sleeps (the slow
//! sender's pauses are the behaviour under test), and checks the process
//! survived.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::support::{RawClient, Sluice, adt, read_to_close};

/// How long a test waits for a close the server should make on its own.
const CLOSE_WITHIN: Duration = Duration::from_secs(15);

/// Wraps a payload in the MLLP envelope.
fn frame(message: &[u8]) -> Vec<u8> {
    [&[0x0B][..], message, &[0x1C, 0x0D]].concat()
}

/// Field `n` of the first `name` segment of an ACK, split by the ACK's own
/// field separator (its byte 3). Numbered as HL7 does: for MSH, field 1 is
/// the separator itself.
fn field(ack: &[u8], name: &str, n: usize) -> String {
    let separator = ack[3];
    let segment = ack
        .split(|&b| b == b'\r')
        .find(|s| s.starts_with(name.as_bytes()))
        .unwrap_or_else(|| panic!("no {name} segment in {:?}", String::from_utf8_lossy(ack)));
    let index = if name == "MSH" { n - 1 } else { n };
    segment.split(|&b| b == separator).nth(index).map(|f| String::from_utf8_lossy(f).into_owned()).unwrap_or_default()
}

/// The first component of a field (standard `^` component separator).
fn code(value: &str) -> &str {
    value.split('^').next().unwrap_or("")
}

/// Sends `message`, expects AA echoing `control_id`.
fn expect_aa(client: &mut RawClient, message: &[u8], control_id: &str) {
    let ack = client.send(message);
    assert_eq!(field(&ack, "MSA", 1), "AA", "ACK: {:?}", String::from_utf8_lossy(&ack));
    assert_eq!(field(&ack, "MSA", 2), control_id);
}

/// Waits for the server to close `client`'s connection; returns what it sent
/// before closing (a reset after that counts as closed too).
fn expect_closed(client: &mut RawClient) -> Vec<u8> {
    client.stream.set_read_timeout(Some(CLOSE_WITHIN)).unwrap();
    let mut frames = Vec::new();
    while let Some(frame) = client.read_frame() {
        frames.extend(frame);
    }
    frames
}

/// A v2.5.1 ADT^A01 of exactly `size` bytes (at least a few hundred),
/// padded with NTE segments.
fn padded_adt(control_id: &str, size: usize) -> Vec<u8> {
    let mut message = adt(control_id);
    let mut n = 1;
    while message.len() + 100 < size {
        message.extend_from_slice(format!("NTE|{n}||{}\r", "x".repeat(80)).as_bytes());
        n += 1;
    }
    let last = format!("NTE|{n}||");
    let fill = size.saturating_sub(message.len() + last.len() + 1);
    message.extend_from_slice(format!("{last}{}\r", "y".repeat(fill)).as_bytes());
    message
}

/// Bytes before the first frame and between frames are ignored: each frame
/// still gets AA with MSA-2 equal to its MSH-10, whether the junk comes in
/// its own write or in the same write as the frames.
#[test]
fn garbage_before_and_between_frames_is_ignored() {
    let mut sluice = Sluice::start("");
    let mut client = sluice.client();

    client.write_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\x1c\r\n");
    expect_aa(&mut client, &adt("JUNK-1"), "JUNK-1");

    client.write_raw(b"\r\n\r\n  \x1c\x0d keepalive?\n");
    client.write_raw(&[b"\x00\x00noise".as_slice(), &frame(&adt("JUNK-2")), b"\r\n--\x1c--", &frame(&adt("JUNK-3")), b"trailing"].concat());
    for id in ["JUNK-2", "JUNK-3"] {
        let ack = client.read_frame().expect("an ACK");
        assert_eq!(field(&ack, "MSA", 1), "AA");
        assert_eq!(field(&ack, "MSA", 2), id);
    }
    expect_aa(&mut client, &adt("JUNK-4"), "JUNK-4");

    assert_eq!(sluice.outbox("lab"), ["JUNK-1", "JUNK-2", "JUNK-3", "JUNK-4"]);
    assert!(sluice.is_running());
}

/// A frame without an MSH segment gets AR with an ERR segment (ERR-3 code
/// 100, segment sequence error), is not queued, and the connection stays
/// usable.
#[test]
fn frame_without_msh_gets_ar_and_connection_stays_usable() {
    let mut sluice = Sluice::start("");
    let mut client = sluice.client();

    let ack = client.send(b"PID|1||42\r");
    assert_eq!(field(&ack, "MSA", 1), "AR", "ACK: {:?}", String::from_utf8_lossy(&ack));
    assert_eq!(field(&ack, "MSA", 2), "", "there is no control ID to echo");
    assert!(field(&ack, "MSA", 3).contains("MSH"), "MSA-3 says why: {:?}", field(&ack, "MSA", 3));
    assert_eq!(code(&field(&ack, "ERR", 3)), "100");
    assert_eq!(field(&ack, "ERR", 4), "E");

    expect_aa(&mut client, &adt("AFTER-NOMSH"), "AFTER-NOMSH");
    assert_eq!(sluice.outbox("lab"), ["AFTER-NOMSH"]);
    assert!(sluice.is_running());
}

/// An MSH with an empty MSH-10 gets AR (ERR-3 101, required field missing,
/// located at MSH-10) and is not queued.
#[test]
fn empty_control_id_gets_ar_required_field_missing() {
    let mut sluice = Sluice::start("");
    let mut client = sluice.client();

    let ack = client.send(b"MSH|^~\\&|EHR|HOSP|LIS|LAB|20260101120000||ADT^A01^ADT_A01||P|2.5.1\rPID|1||42\r");
    assert_eq!(field(&ack, "MSA", 1), "AR", "ACK: {:?}", String::from_utf8_lossy(&ack));
    assert!(field(&ack, "MSA", 3).contains("MSH-10"), "MSA-3 names the field: {:?}", field(&ack, "MSA", 3));
    assert_eq!(code(&field(&ack, "ERR", 3)), "101");
    assert!(field(&ack, "ERR", 2).starts_with("MSH^1^10"), "ERR-2 locates MSH-10: {:?}", field(&ack, "ERR", 2));

    expect_aa(&mut client, &adt("AFTER-EMPTY"), "AFTER-EMPTY");
    assert_eq!(sluice.outbox("lab"), ["AFTER-EMPTY"]);
    assert!(sluice.is_running());
}

/// A frame larger than `max_frame_size` gets an AR echoing its control ID
/// and naming the limit, then the server closes that connection; other
/// connections carry on, and a frame of exactly the limit is accepted.
#[test]
fn oversized_frame_gets_ar_naming_the_limit_then_close() {
    let mut sluice = Sluice::start("max_frame_size = \"64KiB\"\nidle_timeout = \"30s\"");
    let mut other = sluice.client();
    expect_aa(&mut other, &adt("OTHER-1"), "OTHER-1");

    let at_limit = padded_adt("AT-LIMIT", 64 * 1024);
    assert_eq!(at_limit.len(), 64 * 1024);
    expect_aa(&mut sluice.client(), &at_limit, "AT-LIMIT");

    let mut big = sluice.client();
    let mut writer = big.stream.try_clone().unwrap();
    let bytes = frame(&padded_adt("BIG-1", 200 * 1024));
    // The server stops reading part-way: write from a thread and ignore the
    // broken pipe that follows, as a real sender would see it.
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&bytes);
    });
    let ack = big.read_frame().expect("an AR before the connection closes");
    assert_eq!(field(&ack, "MSA", 1), "AR", "ACK: {:?}", String::from_utf8_lossy(&ack));
    assert_eq!(field(&ack, "MSA", 2), "BIG-1");
    assert!(field(&ack, "MSA", 3).contains("max_frame_size"), "MSA-3: {:?}", field(&ack, "MSA", 3));
    assert_eq!(field(&ack, "MSH", 5), "EHR", "answered in the sender's own header");
    assert!(expect_closed(&mut big).is_empty(), "nothing after the AR");
    sender.join().unwrap();

    expect_aa(&mut other, &adt("OTHER-2"), "OTHER-2");
    assert_eq!(sluice.outbox("lab"), ["OTHER-1", "AT-LIMIT", "OTHER-2"]);
    assert!(sluice.is_running());
}

/// A frame whose end never comes gets, after `frame_timeout`, an AR naming
/// `frame_timeout` (its MSH was readable) and the connection closes; a
/// stalled frame without a readable MSH is closed without an answer. Other
/// connections are unaffected.
#[test]
fn unfinished_frame_gets_ar_after_frame_timeout_then_close() {
    let mut sluice = Sluice::start("frame_timeout = \"1s\"\nidle_timeout = \"30s\"");
    let mut other = sluice.client();
    expect_aa(&mut other, &adt("OTHER-1"), "OTHER-1");

    let mut stuck = sluice.client();
    let mut headless = sluice.client();
    let started = Instant::now();
    stuck.write_raw(b"\x0bMSH|^~\\&|EHR|HOSP|LIS|LAB|20260101120000||ADT^A01^ADT_A01|STUCK-1|P|2.5.1\rPID|1||4");
    headless.write_raw(b"\x0bPID|1||4");

    let ack = stuck.read_frame().expect("an AR before the connection closes");
    assert!(started.elapsed() >= Duration::from_millis(900), "not before frame_timeout: {:?}", started.elapsed());
    assert_eq!(field(&ack, "MSA", 1), "AR", "ACK: {:?}", String::from_utf8_lossy(&ack));
    assert_eq!(field(&ack, "MSA", 2), "STUCK-1");
    assert!(field(&ack, "MSA", 3).contains("frame_timeout"), "MSA-3: {:?}", field(&ack, "MSA", 3));
    assert!(expect_closed(&mut stuck).is_empty(), "nothing after the AR");
    assert!(expect_closed(&mut headless).is_empty(), "no MSH, no answer: just closed");

    expect_aa(&mut other, &adt("OTHER-2"), "OTHER-2");
    assert_eq!(sluice.outbox("lab"), ["OTHER-1", "OTHER-2"]);
    assert!(sluice.is_running());
}

/// A sender that trickles a frame in small pieces, for longer than
/// `idle_timeout` but well within `frame_timeout`, gets AA: the idle limit
/// does not cut a frame in progress. (The pauses are the behaviour tested.)
#[test]
fn slow_sender_within_frame_timeout_gets_aa() {
    let mut sluice = Sluice::start("frame_timeout = \"10s\"\nidle_timeout = \"1s\"");
    let mut client = sluice.client();

    let bytes = frame(&adt("SLOW-1"));
    let started = Instant::now();
    for piece in bytes.chunks(bytes.len().div_ceil(25)) {
        client.write_raw(piece);
        std::thread::sleep(Duration::from_millis(60));
    }
    assert!(started.elapsed() > Duration::from_secs(1), "the frame took longer than idle_timeout");
    let ack = client.read_frame().expect("an ACK");
    assert_eq!(field(&ack, "MSA", 1), "AA");
    assert_eq!(field(&ack, "MSA", 2), "SLOW-1");

    expect_aa(&mut client, &adt("SLOW-2"), "SLOW-2");
    assert!(sluice.is_running());
}

/// A connection with no frame for `idle_timeout` is closed (EOF), whether it
/// never sent anything or went quiet after an ACK; new clients are served.
#[test]
fn idle_connection_is_closed_after_idle_timeout() {
    let mut sluice = Sluice::start("idle_timeout = \"1s\"\nframe_timeout = \"30s\"");
    let mut silent = sluice.client();
    let silent_since = Instant::now();
    let mut quiet = sluice.client();
    expect_aa(&mut quiet, &adt("QUIET-1"), "QUIET-1");
    let quiet_since = Instant::now();

    assert!(read_to_close(&mut silent.stream, CLOSE_WITHIN).is_empty(), "closed without a word");
    assert!(silent_since.elapsed() >= Duration::from_millis(900), "not before idle_timeout: {:?}", silent_since.elapsed());
    assert!(expect_closed(&mut quiet).is_empty(), "closed without a word");
    assert!(quiet_since.elapsed() >= Duration::from_millis(900), "not before idle_timeout: {:?}", quiet_since.elapsed());

    expect_aa(&mut sluice.client(), &adt("FRESH-1"), "FRESH-1");
    assert!(sluice.is_running());
}

/// With `max_connections = 2` a third connection is closed at once without
/// any data while the first two keep working; a freed slot is reused.
#[test]
fn connections_beyond_max_connections_are_closed_at_once() {
    let mut sluice = Sluice::start("max_connections = 2\nidle_timeout = \"60s\"");
    let mut first = sluice.client();
    let mut second = sluice.client();
    // An ACK proves each holds its slot.
    expect_aa(&mut first, &adt("FIRST-1"), "FIRST-1");
    expect_aa(&mut second, &adt("SECOND-1"), "SECOND-1");

    let mut third = sluice.client();
    let started = Instant::now();
    assert!(read_to_close(&mut third.stream, Duration::from_secs(10)).is_empty(), "closed without any data");
    assert!(started.elapsed() < Duration::from_secs(10), "at once, not after idle_timeout");

    expect_aa(&mut first, &adt("FIRST-2"), "FIRST-2");
    expect_aa(&mut second, &adt("SECOND-2"), "SECOND-2");

    // Once the first client leaves, the server frees its slot as soon as it
    // sees the close; connect until a connection is served (bounded).
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    let ack = loop {
        let mut client = sluice.client();
        let _ = client.stream.write_all(&frame(&adt("LATER-1")));
        if let Some(ack) = client.read_frame() {
            break ack;
        }
        assert!(Instant::now() < deadline, "a freed slot is never reused");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(field(&ack, "MSA", 1), "AA");
    assert_eq!(field(&ack, "MSA", 2), "LATER-1");
    assert_eq!(sluice.outbox("lab"), ["FIRST-1", "SECOND-1", "FIRST-2", "SECOND-2", "LATER-1"]);
    assert!(sluice.is_running());
}

/// A frame split over many writes, several frames in one write, and frames
/// cut at arbitrary points across writes each get their ACK, in order.
#[test]
fn split_and_pipelined_frames_get_acks_in_order() {
    let mut sluice = Sluice::start("");
    let mut client = sluice.client();

    for byte in frame(&adt("SPLIT-1")) {
        client.write_raw(&[byte]);
    }
    let ack = client.read_frame().expect("an ACK");
    assert_eq!((field(&ack, "MSA", 1).as_str(), field(&ack, "MSA", 2).as_str()), ("AA", "SPLIT-1"));

    let pipelined: Vec<String> = (1..=5).map(|i| format!("PIPE-{i}")).collect();
    client.write_raw(&pipelined.iter().flat_map(|id| frame(&adt(id))).collect::<Vec<u8>>());
    let crossing: Vec<String> = (1..=4).map(|i| format!("CROSS-{i}")).collect();
    let stream: Vec<u8> = crossing.iter().flat_map(|id| frame(&adt(id))).collect();
    for piece in stream.chunks(37) {
        client.write_raw(piece);
    }

    let expected: Vec<String> = pipelined.iter().chain(&crossing).cloned().collect();
    for id in &expected {
        let ack = client.read_frame().expect("an ACK");
        assert_eq!(field(&ack, "MSA", 1), "AA");
        assert_eq!(&field(&ack, "MSA", 2), id, "ACKs come back in the order the frames were sent");
    }
    let stored: Vec<String> = ["SPLIT-1".to_string()].into_iter().chain(expected).collect();
    assert_eq!(sluice.outbox("lab"), stored);
    assert!(sluice.is_running());
}

/// A message with its own separators (`*` for fields, `$` for components)
/// gets an ACK written with them, MSA-2 byte-exact including surrounding
/// spaces in the control ID.
#[test]
fn ack_uses_the_message_own_separators_and_exact_control_id() {
    let mut sluice = Sluice::start("");
    let mut client = sluice.client();

    let ack = client.send(b"MSH*^~\\&*EHR*HOSP*LIS*LAB*20260101120000**ADT^A01^ADT_A01*STAR 7  *P*2.5.1\rEVN*A01*20260101120000\rPID*1**42^^^HOSP^MR**Doe^Jane\r");
    let text = String::from_utf8_lossy(&ack).into_owned();
    assert!(text.starts_with("MSH*^~\\&*LIS*LAB*EHR*HOSP*"), "ACK: {text:?}");
    assert!(!text.contains('|'), "no `|` anywhere: {text:?}");
    assert_eq!(field(&ack, "MSH", 9), "ACK^A01^ACK");
    assert_eq!(field(&ack, "MSH", 11), "P");
    assert_eq!(field(&ack, "MSH", 12), "2.5.1");
    assert!(text.contains("\rMSA*AA*STAR 7  \r"), "MSA-2 byte-exact: {text:?}");

    let ack = client.send(b"MSH|$~\\&|EHR|HOSP|LIS|LAB|20260101120000||ADT$A04$ADT_A01|  PAD 9 |P|2.4\rPID|1||42$$$HOSP$MR\r");
    let text = String::from_utf8_lossy(&ack).into_owned();
    assert!(text.starts_with("MSH|$~\\&|LIS|LAB|EHR|HOSP|"), "ACK: {text:?}");
    assert_eq!(field(&ack, "MSH", 9), "ACK$A04$ACK");
    assert_eq!(field(&ack, "MSH", 12), "2.4");
    assert!(text.contains("\rMSA|AA|  PAD 9 \r"), "MSA-2 byte-exact: {text:?}");

    assert_eq!(sluice.outbox("lab"), ["STAR 7  ", "  PAD 9 "]);
    assert!(sluice.is_running());
}

/// A sender that keeps starting frames and never finishes one is closed
/// within `frame_timeout` + `idle_timeout`: every wait is bounded, and the
/// connection's slot is not held forever.
#[test]
fn restarted_frames_do_not_keep_a_connection_open() {
    let mut sluice = Sluice::start("frame_timeout = \"1s\"\nidle_timeout = \"1s\"");
    let mut client = sluice.client();
    // The read timeout paces the restarts: one every half second.
    client.stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let started = Instant::now();
    loop {
        if client.stream.write_all(b"\x0bMSH|^~\\&|").is_err() {
            break;
        }
        match client.stream.read(&mut [0u8; 1024]) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        assert!(started.elapsed() < Duration::from_secs(6), "still open after {:?} without a complete frame", started.elapsed());
    }
    assert!(sluice.is_running());
}

/// An AR for a header missing MSH-9 still echoes the control ID it could
/// read: MSA-2 is MSH-10 (README: the empty MSA-2 is only for frames where
/// not even MSH-10 can be read), and the ACK addresses the sender.
#[test]
fn ar_for_a_header_without_msh9_echoes_its_control_id() {
    let mut sluice = Sluice::start("");
    let mut client = sluice.client();

    let ack = client.send(b"MSH|^~\\&|EHR|HOSP|LIS|LAB|20260101120000|||NO-TYPE-1|P|2.5.1\rPID|1||42\r");
    assert_eq!(field(&ack, "MSA", 1), "AR", "ACK: {:?}", String::from_utf8_lossy(&ack));
    assert_eq!(code(&field(&ack, "ERR", 3)), "101");
    assert_eq!(field(&ack, "MSA", 2), "NO-TYPE-1", "ACK: {:?}", String::from_utf8_lossy(&ack));
    assert_eq!(field(&ack, "MSH", 5), "EHR");
    assert!(sluice.is_running());
}
