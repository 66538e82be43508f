//! A deliberately simple, blocking MLLP client written for the tests, so the
//! tests do not depend on the engine's own client code.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// MLLP over any byte stream: plain TCP ([`RawClient`]) or TLS.
pub struct MllpConn<S> {
    pub stream: S,
    buf: Vec<u8>,
}

pub type RawClient = MllpConn<TcpStream>;

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream.set_nodelay(true).unwrap();
        MllpConn::new(stream)
    }
}

impl<S: Read + Write> MllpConn<S> {
    pub fn new(stream: S) -> MllpConn<S> {
        MllpConn { stream, buf: Vec::new() }
    }

    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Frames and sends one message.
    pub fn send_frame(&mut self, message: &[u8]) {
        self.try_send_frame(message).expect("write");
    }

    /// Frames and sends one message; the error is the caller's to judge.
    pub fn try_send_frame(&mut self, message: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(&[&[0x0B][..], message, &[0x1C, 0x0D]].concat())
    }

    /// Sends and waits for the ACK.
    pub fn send(&mut self, message: &[u8]) -> Vec<u8> {
        self.send_frame(message);
        self.read_frame().expect("an ACK")
    }

    /// The next frame's payload, or `None` if the server closed the connection.
    pub fn read_frame(&mut self) -> Option<Vec<u8>> {
        match self.try_read_frame() {
            Ok(frame) => frame,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// [`MllpConn::read_frame`], with read errors (a TLS alert, say) returned.
    pub fn try_read_frame(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(start) = self.buf.iter().position(|&b| b == 0x0B)
                && let Some(end) = self.buf[start..].windows(2).position(|w| w == [0x1C, 0x0D])
            {
                let frame = self.buf[start + 1..start + end].to_vec();
                self.buf.drain(..start + end + 2);
                return Ok(Some(frame));
            }
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk)? {
                0 => return Ok(None),
                n => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// A small ADT^A01 with the given control ID.
pub fn adt(control_id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|EHR|HOSP|LIS|LAB|20260101120000||ADT^A01^ADT_A01|{control_id}|P|2.5.1\rEVN|A01|20260101120000\rPID|1||PAT{control_id}^^^HOSP^MR||Doe^Jane||19700101|F\r").into_bytes()
}

/// A field of an ACK, split with `|` and `^` (the tests' messages use them).
/// `("MSA", 2)` is MSA-2; MSH fields count MSH-1 as the separator.
pub fn ack_field(ack: &[u8], segment: &str, field: usize) -> String {
    let text = String::from_utf8_lossy(ack);
    let line = text.split('\r').find(|s| s.starts_with(segment)).unwrap_or_else(|| panic!("no {segment} in {text:?}"));
    let index = if segment == "MSH" { field - 1 } else { field };
    line.split('|').nth(index).unwrap_or("").to_string()
}
