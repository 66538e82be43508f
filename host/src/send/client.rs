//! A minimal MLLP client, plain or over TLS: one message in flight, waits
//! for its ACK.

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::codec::{Decoder, Encoder};

use crate::hl7::{CharsetPolicy, Message};
use crate::mllp::{Framing, MllpCodec, MllpEvent};
use crate::tls::{ClientStream, ClientTls};

pub struct MllpClient {
    stream: ClientStream,
    codec: MllpCodec,
    buf: BytesMut,
    out: BytesMut,
    timeout: Duration,
}

/// The parts of an ACK a sender checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckSummary {
    /// MSA-1.
    pub code: String,
    /// MSA-2.
    pub control_id: Bytes,
    /// MSA-3.
    pub text: String,
}

impl AckSummary {
    pub fn parse(ack: &Bytes) -> anyhow::Result<AckSummary> {
        let message = Message::parse(ack.clone(), CharsetPolicy::default()).context("the ACK is not a valid HL7 message")?;
        let raw = |path: &str| message.raw_at(&path.parse().expect("valid path")).map(Bytes::copy_from_slice).unwrap_or_default();
        let code = String::from_utf8_lossy(&raw("MSA-1")).into_owned();
        if code.is_empty() {
            bail!("the ACK has no MSA-1");
        }
        Ok(AckSummary { code, control_id: raw("MSA-2"), text: message.text_at(&"MSA-3".parse().expect("valid path")).unwrap_or_default() })
    }

    pub fn is_accept(&self) -> bool {
        self.code == "AA" || self.code == "CA"
    }
}

impl MllpClient {
    pub async fn connect(addr: &str, timeout_after: Duration) -> anyhow::Result<MllpClient> {
        MllpClient::connect_with(addr, None, timeout_after).await
    }

    /// Connects, then completes a TLS handshake when `tls` is given.
    pub async fn connect_with(addr: &str, tls: Option<&ClientTls>, timeout_after: Duration) -> anyhow::Result<MllpClient> {
        let tcp = timeout(timeout_after, TcpStream::connect(addr))
            .await
            .with_context(|| format!("timed out connecting to {addr}"))?
            .with_context(|| format!("failed to connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        let stream = match tls {
            None => ClientStream::Plain(tcp),
            Some(tls) => {
                let stream = timeout(timeout_after, tls.connect(tcp))
                    .await
                    .with_context(|| format!("timed out in the TLS handshake with {addr}"))?
                    .with_context(|| format!("TLS handshake with {addr} failed"))?;
                ClientStream::Tls(Box::new(stream))
            }
        };
        Ok(MllpClient {
            stream,
            codec: MllpCodec::new(Framing::default(), 16 * 1024 * 1024),
            buf: BytesMut::with_capacity(4096),
            out: BytesMut::with_capacity(4096),
            timeout: timeout_after,
        })
    }

    /// Sends one message and returns the ACK's payload.
    pub async fn send(&mut self, message: &[u8]) -> anyhow::Result<Bytes> {
        self.out.clear();
        self.codec.encode(message, &mut self.out)?;
        timeout(self.timeout, self.stream.write_all(&self.out)).await.context("timed out sending")??;
        self.receive().await
    }

    /// Waits for the next frame from the peer.
    pub async fn receive(&mut self) -> anyhow::Result<Bytes> {
        loop {
            match self.codec.decode(&mut self.buf)? {
                Some(MllpEvent::Frame(ack)) => return Ok(ack),
                Some(MllpEvent::Oversized { .. }) => bail!("the peer sent an oversized frame"),
                None => {}
            }
            let n = timeout(self.timeout, self.stream.read_buf(&mut self.buf)).await.context("timed out waiting for the ACK")??;
            if n == 0 {
                bail!("the peer closed the connection without an ACK");
            }
        }
    }
}
