//! The MLLP pool against a fake receiver on a free local port.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::Decoder;

use super::*;

/// What the fake receiver does with a message.
enum Reply {
    /// Answers with this frame payload and waits for the next message.
    Frame(Vec<u8>),
    /// Answers, then closes the connection.
    FrameThenClose(Vec<u8>),
    /// Answers nothing and keeps the connection open.
    Nothing,
}

#[derive(Debug, PartialEq, Eq)]
enum Event {
    Accepted(usize),
    Received(usize, Vec<u8>),
    /// The connection is gone: closed by the receiver, or by the client (EOF).
    Closed(usize),
}

struct Receiver {
    destination: String,
    events: mpsc::UnboundedReceiver<Event>,
}

impl Receiver {
    /// Starts a receiver that answers each message as `behave(connection
    /// number, message)` says; connections are numbered from 0.
    async fn start(behave: impl Fn(usize, &[u8]) -> Reply + Send + Sync + 'static) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let destination = listener.local_addr().unwrap().to_string();
        let (tx, events) = mpsc::unbounded_channel();
        let behave: Behaviour = Arc::new(behave);
        tokio::spawn(async move {
            for n in 0.. {
                let Ok((stream, _)) = listener.accept().await else { return };
                let _ = tx.send(Event::Accepted(n));
                tokio::spawn(serve(n, stream, behave.clone(), tx.clone()));
            }
        });
        Receiver { destination, events }
    }

    async fn next(&mut self) -> Event {
        self.events.recv().await.expect("the receiver runs as long as the test")
    }

    fn granted(&self) -> Vec<Destination> {
        vec![Destination::parse(&self.destination).unwrap()]
    }
}

type Behaviour = Arc<dyn Fn(usize, &[u8]) -> Reply + Send + Sync>;

async fn serve(n: usize, mut stream: TcpStream, behave: Behaviour, tx: mpsc::UnboundedSender<Event>) {
    let mut codec = MllpCodec::new(Framing::default(), 1 << 20);
    let mut buf = BytesMut::new();
    'connection: loop {
        let message = loop {
            match codec.decode(&mut buf).unwrap() {
                Some(MllpEvent::Frame(frame)) => break frame.to_vec(),
                Some(MllpEvent::Oversized { .. }) => panic!("the client sent an oversized frame"),
                None => {}
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break 'connection,
                Ok(_) => {}
            }
        };
        let _ = tx.send(Event::Received(n, message.clone()));
        match behave(n, &message) {
            Reply::Frame(ack) => stream.write_all(&framed(&ack)).await.unwrap(),
            Reply::FrameThenClose(ack) => {
                stream.write_all(&framed(&ack)).await.unwrap();
                break;
            }
            Reply::Nothing => {}
        }
    }
    drop(stream);
    let _ = tx.send(Event::Closed(n));
}

fn framed(payload: &[u8]) -> Vec<u8> {
    [&[START_BLOCK][..], payload, &[END_BLOCK, CARRIAGE_RETURN]].concat()
}

fn message(control_id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||ADT^A01^ADT_A01|{control_id}|P|2.5.1\rPID|1||42^^^HOSP^MR||Doe^John").into_bytes()
}

/// An ACK of `message` with `code`, acknowledging `control_id` (the
/// message's own MSH-10 when `None`).
fn ack(message: &[u8], code: &str, control_id: Option<&str>) -> Vec<u8> {
    let id = match control_id {
        Some(id) => id.to_string(),
        None => String::from_utf8(ack::control_id(message).unwrap().to_vec()).unwrap(),
    };
    format!("MSH|^~\\&|RCV|RFAC|SND|SFAC|20240101120001||ACK^A01^ACK|R{id}|P|2.5.1\rMSA|{code}|{id}").into_bytes()
}

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn an_aa_comes_back_for_each_message_on_one_persistent_connection() {
    let mut receiver = Receiver::start(|_, m| Reply::Frame(ack(m, "AA", None))).await;
    let pool = MllpPool::new();
    for id in ["MSG1", "MSG2"] {
        let sent = message(id);
        let ack = pool.send("fwd", &receiver.granted(), &receiver.destination, &sent, TIMEOUT).await.unwrap();
        assert_eq!(ack.code, "AA");
        assert_eq!(ack.text, "");
        assert!(ack.raw.starts_with(b"MSH|") && ack.raw.ends_with(format!("MSA|AA|{id}").as_bytes()), "the ACK without framing");
    }
    assert_eq!(receiver.next().await, Event::Accepted(0));
    assert_eq!(receiver.next().await, Event::Received(0, message("MSG1")));
    assert_eq!(receiver.next().await, Event::Received(0, message("MSG2")), "the same connection carried both");
}

#[tokio::test]
async fn an_ack_for_another_message_is_a_bad_ack_and_the_connection_is_replaced() {
    let mut receiver = Receiver::start(|n, m| Reply::Frame(ack(m, "AA", (n == 0).then_some("OTHER")))).await;
    let pool = MllpPool::new();
    let err = pool.send("fwd", &receiver.granted(), &receiver.destination, &message("MSG1"), TIMEOUT).await.unwrap_err();
    let SendError::BadAck(why) = err else { panic!("not a bad ACK: {err:?}") };
    assert!(why.contains("MSA-2 `OTHER`") && why.contains("`MSG1`") && why.contains(&receiver.destination), "{why}");

    let ack = pool.send("fwd", &receiver.granted(), &receiver.destination, &message("MSG2"), TIMEOUT).await.unwrap();
    assert_eq!(ack.code, "AA");
    let events = [receiver.next().await, receiver.next().await, receiver.next().await, receiver.next().await, receiver.next().await];
    assert!(events.contains(&Event::Closed(0)), "{events:?}");
    assert!(events.contains(&Event::Received(1, message("MSG2"))), "{events:?}");
}

#[tokio::test]
async fn an_ack_must_match_byte_for_byte() {
    // Same text, other bytes: a trailing space, and a lowercase variant.
    for wrong in ["MSG1 ", "msg1"] {
        let receiver = Receiver::start(move |_, m| Reply::Frame(ack(m, "AA", Some(wrong)))).await;
        let err = MllpPool::new().send("fwd", &receiver.granted(), &receiver.destination, &message("MSG1"), TIMEOUT).await.unwrap_err();
        assert!(matches!(err, SendError::BadAck(_)), "{wrong:?}: {err:?}");
    }
}

#[tokio::test]
async fn no_ack_in_time_is_unavailable_and_the_next_send_uses_a_new_connection() {
    let mut receiver = Receiver::start(|n, m| if n == 0 { Reply::Nothing } else { Reply::Frame(ack(m, "AA", None)) }).await;
    let pool = MllpPool::new();
    let err = pool.send("fwd", &receiver.granted(), &receiver.destination, &message("SLOW"), Duration::from_millis(200)).await.unwrap_err();
    let SendError::Unavailable(why) = err else { panic!("not unavailable: {err:?}") };
    assert!(why.contains("no ACK from") && why.contains("200ms"), "{why}");
    // The silent connection was closed by the client.
    assert_eq!(receiver.next().await, Event::Accepted(0));
    assert_eq!(receiver.next().await, Event::Received(0, message("SLOW")));
    assert_eq!(receiver.next().await, Event::Closed(0));

    let ack = pool.send("fwd", &receiver.granted(), &receiver.destination, &message("NEXT"), TIMEOUT).await.unwrap();
    assert_eq!(ack.code, "AA");
    assert_eq!(receiver.next().await, Event::Accepted(1));
    assert_eq!(receiver.next().await, Event::Received(1, message("NEXT")));
}

#[tokio::test]
async fn a_dropped_send_closes_its_connection_instead_of_reusing_it() {
    let mut receiver = Receiver::start(|n, m| if n == 0 { Reply::Nothing } else { Reply::Frame(ack(m, "AA", None)) }).await;
    let pool = MllpPool::new();
    let (granted, destination) = (receiver.granted(), receiver.destination.clone());
    let dropped = message("DROPPED");
    // The caller's own cap: the send future is dropped while it waits for the ACK.
    let mut send = Box::pin(pool.send("fwd", &granted, &destination, &dropped, TIMEOUT));
    tokio::select! {
        _ = &mut send => panic!("the receiver never answers"),
        event = receiver.next() => assert_eq!(event, Event::Accepted(0)),
    }
    tokio::select! {
        _ = &mut send => panic!("the receiver never answers"),
        event = receiver.next() => assert_eq!(event, Event::Received(0, message("DROPPED"))),
    }
    drop(send);
    assert_eq!(receiver.next().await, Event::Closed(0));

    let ack = pool.send("fwd", &granted, &destination, &message("AFTER"), TIMEOUT).await.unwrap();
    assert_eq!(ack.code, "AA");
    assert_eq!(receiver.next().await, Event::Accepted(1));
}

#[tokio::test]
async fn a_receiver_closing_between_messages_is_survived() {
    let mut receiver = Receiver::start(|_, m| Reply::FrameThenClose(ack(m, "AA", None))).await;
    let pool = MllpPool::new();
    for (n, id) in ["ONE", "TWO", "THREE"].into_iter().enumerate() {
        let ack = pool.send("fwd", &receiver.granted(), &receiver.destination, &message(id), TIMEOUT).await.unwrap();
        assert_eq!(ack.code, "AA", "{id}");
        assert_eq!(receiver.next().await, Event::Accepted(n));
        assert_eq!(receiver.next().await, Event::Received(n, message(id)));
        // Closed before the next send starts: that send must notice.
        assert_eq!(receiver.next().await, Event::Closed(n));
    }
}

#[tokio::test]
async fn an_ungranted_destination_and_a_message_without_msh_10_are_denied() {
    let receiver = Receiver::start(|_, m| Reply::Frame(ack(m, "AA", None))).await;
    let pool = MllpPool::new();
    let other = vec![Destination::parse("127.0.0.1:1").unwrap()];
    let err = pool.send("fwd", &other, &receiver.destination, &message("MSG1"), TIMEOUT).await.unwrap_err();
    let SendError::Denied(why) = err else { panic!("not denied: {err:?}") };
    assert!(why.contains("`fwd`") && why.contains(&receiver.destination), "names the plugin and the destination: {why}");
    let err = pool.send("fwd", &[], "not a destination", &message("MSG1"), TIMEOUT).await.unwrap_err();
    assert!(matches!(err, SendError::Denied(_)), "{err:?}");

    for bad in [&b"MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101||ADT^A01||P|2.5"[..], b"MSH|^~\\&|SND", b"PID|1||42", b""] {
        let err = pool.send("fwd", &receiver.granted(), &receiver.destination, bad, TIMEOUT).await.unwrap_err();
        let SendError::Denied(why) = err else { panic!("not denied: {err:?}") };
        assert!(why.contains(&receiver.destination), "{why}");
    }
}

#[tokio::test]
async fn an_ack_with_its_own_separators_is_read_with_them() {
    let receiver = Receiver::start(|_, m| {
        let id = String::from_utf8(ack::control_id(m).unwrap().to_vec()).unwrap();
        Reply::Frame(format!("MSH#$~\\&#RCV#RFAC#SND#SFAC#20240101##ACK$A01#R1#P#2.5\rMSA#AE#{id}#Field \\F\\ broken$ really").into_bytes())
    })
    .await;
    let ack = MllpPool::new().send("fwd", &receiver.granted(), &receiver.destination, &message("MSG1"), TIMEOUT).await.unwrap();
    assert_eq!(ack.code, "AE");
    assert_eq!(ack.text, "Field # broken$ really");
}

#[tokio::test]
async fn an_ack_larger_than_the_limit_is_a_bad_ack() {
    let receiver = Receiver::start(|_, m| {
        let mut huge = ack(m, "AA", None);
        huge.extend(std::iter::repeat_n(b'x', MAX_ACK));
        Reply::Frame(huge)
    })
    .await;
    let err = MllpPool::new().send("fwd", &receiver.granted(), &receiver.destination, &message("MSG1"), TIMEOUT).await.unwrap_err();
    let SendError::BadAck(why) = err else { panic!("not a bad ACK: {err:?}") };
    assert!(why.contains("larger than 1048576 bytes"), "{why}");
}

#[tokio::test]
async fn a_zero_timeout_sends_nothing() {
    let receiver = Receiver::start(|_, m| Reply::Frame(ack(m, "AA", None))).await;
    let err = MllpPool::new().send("fwd", &receiver.granted(), &receiver.destination, &message("MSG1"), Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, SendError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_destination_is_unavailable() {
    // A port that was free a moment ago: nothing listens on it.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let destination = format!("127.0.0.1:{port}");
    let granted = vec![Destination::parse(&destination).unwrap()];
    let err = MllpPool::new().send("fwd", &granted, &destination, &message("MSG1"), TIMEOUT).await.unwrap_err();
    let SendError::Unavailable(why) = err else { panic!("not unavailable: {err:?}") };
    assert!(why.contains(&destination), "{why}");
}

#[test]
fn the_ack_text_is_msa_3_or_else_the_err_text() {
    let check = |ack: &str| ack::check(ack.as_bytes(), b"X1").unwrap();
    assert_eq!(check("MSH|^~\\&|R|F|S|F|1||ACK|A|P|2.5\rMSA|AR|X1|Unknown \\S\\ type").text, "Unknown ^ type");
    let err = "MSH|^~\\&|R|F|S|F|1||ACK|A|P|2.5\rMSA|AE|X1\rERR||PID^1^3|207^Application internal error^HL70357|E||||Patient not found";
    assert_eq!(check(err).text, "Patient not found", "ERR-8 first");
    let err = "MSH|^~\\&|R|F|S|F|1||ACK|A|P|2.5\rMSA|AE|X1\rERR||PID^1^3|207^Application internal error^HL70357|E";
    assert_eq!(check(err).text, "Application internal error", "else ERR-3's text");
    assert_eq!(check("MSH|^~\\&|R|F|S|F|1||ACK||P|2.5\nMSA|CA|X1\n").code, "CA", "a sparse MSH and \\n terminators are fine");
}

#[test]
fn a_reply_without_a_usable_msa_is_a_bad_ack() {
    for (reply, why) in [
        ("MSH|^~\\&|R|F|S|F|1||ACK|A|P|2.5", "no MSA"),
        ("MSH|^~\\&|R|F|S|F|1||ACK|A|P|2.5\rMSA|OK|X1", "not an acknowledgment code"),
        ("MSH|^~\\&|R|F|S|F|1||ACK|A|P|2.5\rMSA||X1", "not an acknowledgment code"),
        ("MSH|^~\\&|R|F|S|F|1||ACK|A|P|2.5\rMSA|AA", "MSA-2 ``"),
        ("garbage", "not an HL7 message"),
        ("", "not an HL7 message"),
    ] {
        let err = ack::check(reply.as_bytes(), b"X1").unwrap_err();
        assert!(err.contains(why), "{reply:?}: {err}");
    }
}

#[test]
fn destinations_need_a_host_and_a_port_and_ignore_case() {
    assert_eq!(Destination::parse("LAB.example:2575"), Destination::parse("lab.example:2575"));
    assert_eq!(Destination::parse("lab.example:2575").unwrap().to_string(), "lab.example:2575");
    assert_eq!(Destination::parse("[::1]:2575").unwrap().to_string(), "[::1]:2575");
    for bad in ["lab.example", ":2575", "lab.example:", "lab.example:99999", "::1:2575", "a b:1", ""] {
        assert_eq!(Destination::parse(bad), None, "{bad}");
    }
}
