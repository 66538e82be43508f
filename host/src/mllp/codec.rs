//! MLLP framing (HL7 v2 appendix C): `<SB> payload <EB><CR>`, with SB = 0x0B,
//! EB = 0x1C, CR = 0x0D. A tokio-util `Decoder`/`Encoder` pair.
//!
//! The decoder never holds more than `max_frame_size` bytes of one frame
//! plus the last read, scans each byte once (it remembers where it stopped),
//! and never fails: bytes outside frames are skipped and counted, a frame
//! over the limit is reported with its first bytes so the caller can answer.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

pub const START_BLOCK: u8 = 0x0B;
pub const END_BLOCK: u8 = 0x1C;
pub const CARRIAGE_RETURN: u8 = 0x0D;

/// Bytes of an oversized frame kept to read its MSH from.
pub const OVERSIZED_HEAD: usize = 8 * 1024;

/// The frame markers. The defaults are the MLLP standard; other values
/// serve senders that do not follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    pub start: u8,
    pub end: u8,
    /// Whether a CR must follow the end byte (standard: yes).
    pub trailing_cr: bool,
}

impl Default for Framing {
    fn default() -> Self {
        Framing { start: START_BLOCK, end: END_BLOCK, trailing_cr: true }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MllpEvent {
    /// A complete payload, without its markers.
    Frame(Bytes),
    /// A frame grew past `max_frame_size`; `head` holds its first bytes.
    /// The rest of the stream can no longer be trusted to be in step.
    Oversized { head: Bytes, limit: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between frames, looking for the start byte.
    Outside,
    /// Just after a frame ended without CR, in a framing that does not
    /// require one: a CR here still belongs to that frame's trailer.
    AfterEnd,
    /// Inside a frame; bytes before `scanned` hold no end marker.
    Inside { scanned: usize },
}

#[derive(Debug)]
pub struct MllpCodec {
    framing: Framing,
    max_frame_size: usize,
    state: State,
    ignored_bytes: u64,
}

impl MllpCodec {
    pub fn new(framing: Framing, max_frame_size: usize) -> Self {
        MllpCodec { framing, max_frame_size, state: State::Outside, ignored_bytes: 0 }
    }

    /// Bytes skipped so far: outside frames, and frames abandoned by a new start byte.
    pub fn ignored_bytes(&self) -> u64 {
        self.ignored_bytes
    }

    /// Whether a frame has started and not yet ended.
    pub fn in_frame(&self) -> bool {
        matches!(self.state, State::Inside { .. })
    }

    /// The first bytes of the unfinished frame in `buf`, for an answer to a
    /// sender that stops mid-frame.
    pub fn partial_frame<'a>(&self, buf: &'a BytesMut) -> Option<&'a [u8]> {
        self.in_frame().then(|| &buf[..buf.len().min(OVERSIZED_HEAD)])
    }

    fn oversized(&mut self, buf: &mut BytesMut) -> MllpEvent {
        let head = Bytes::copy_from_slice(&buf[..buf.len().min(OVERSIZED_HEAD)]);
        self.ignored_bytes += buf.len() as u64;
        buf.clear();
        self.state = State::Outside;
        MllpEvent::Oversized { head, limit: self.max_frame_size }
    }
}

impl Decoder for MllpCodec {
    type Item = MllpEvent;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<MllpEvent>, Self::Error> {
        loop {
            match self.state {
                State::AfterEnd => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    if buf[0] == CARRIAGE_RETURN {
                        buf.advance(1);
                    }
                    self.state = State::Outside;
                }
                State::Outside => match memchr::memchr(self.framing.start, buf) {
                    None => {
                        self.ignored_bytes += buf.len() as u64;
                        buf.clear();
                        return Ok(None);
                    }
                    Some(at) => {
                        self.ignored_bytes += at as u64;
                        buf.advance(at + 1);
                        self.state = State::Inside { scanned: 0 };
                    }
                },
                State::Inside { scanned } => {
                    let found = memchr::memchr2(self.framing.end, self.framing.start, &buf[scanned..]).map(|i| i + scanned);
                    let Some(at) = found else {
                        if buf.len() > self.max_frame_size {
                            return Ok(Some(self.oversized(buf)));
                        }
                        self.state = State::Inside { scanned: buf.len() };
                        return Ok(None);
                    };
                    if buf[at] == self.framing.start {
                        // A new start byte: the sender gave up on the frame
                        // it was sending. Drop the partial frame, keep going.
                        tracing::warn!(bytes = at, "MLLP start byte inside a frame; partial frame discarded");
                        self.ignored_bytes += at as u64;
                        buf.advance(at + 1);
                        self.state = State::Inside { scanned: 0 };
                        continue;
                    }
                    if at > self.max_frame_size {
                        return Ok(Some(self.oversized(buf)));
                    }
                    if self.framing.trailing_cr {
                        match buf.get(at + 1) {
                            None => {
                                // The CR may come with the next read.
                                self.state = State::Inside { scanned: at };
                                return Ok(None);
                            }
                            Some(&CARRIAGE_RETURN) => {}
                            Some(_) => {
                                // An end byte not followed by CR is not the end marker.
                                self.state = State::Inside { scanned: at + 1 };
                                continue;
                            }
                        }
                    }
                    let payload = buf.split_to(at).freeze();
                    buf.advance(1);
                    if self.framing.trailing_cr {
                        buf.advance(1);
                        self.state = State::Outside;
                    } else {
                        self.state = State::AfterEnd;
                    }
                    return Ok(Some(MllpEvent::Frame(payload)));
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<MllpEvent>, Self::Error> {
        match self.decode(buf)? {
            Some(event) => Ok(Some(event)),
            None => {
                // A frame cut off by the peer closing: nothing to answer.
                self.ignored_bytes += buf.len() as u64;
                buf.clear();
                self.state = State::Outside;
                Ok(None)
            }
        }
    }
}

impl Encoder<&[u8]> for MllpCodec {
    type Error = std::io::Error;

    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<(), Self::Error> {
        dst.reserve(payload.len() + 3);
        dst.put_u8(self.framing.start);
        dst.put_slice(payload);
        dst.put_u8(self.framing.end);
        // A peer whose frames end without CR gets its ACKs the same way (as Mirth's LLP settings do).
        if self.framing.trailing_cr {
            dst.put_u8(CARRIAGE_RETURN);
        }
        Ok(())
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1024;

    fn frame(payload: &[u8]) -> Vec<u8> {
        [&[START_BLOCK][..], payload, &[END_BLOCK, CARRIAGE_RETURN]].concat()
    }

    /// Feeds `stream` in chunks cut at `cuts` and collects every event.
    fn feed(codec: &mut MllpCodec, stream: &[u8], cuts: &[usize]) -> Vec<MllpEvent> {
        let mut events = Vec::new();
        let mut buf = BytesMut::new();
        let mut from = 0;
        for &cut in cuts.iter().chain([&stream.len()]) {
            buf.extend_from_slice(&stream[from..cut]);
            from = cut;
            while let Some(event) = codec.decode(&mut buf).unwrap() {
                events.push(event);
            }
            assert!(buf.len() <= MAX + stream.len().min(MAX * 4), "buffer bounded");
        }
        if let Some(event) = codec.decode_eof(&mut buf).unwrap() {
            events.push(event);
        }
        events
    }

    fn frames(events: &[MllpEvent]) -> Vec<&[u8]> {
        events.iter().filter_map(|e| if let MllpEvent::Frame(f) = e { Some(&f[..]) } else { None }).collect()
    }

    #[test]
    fn pipelined_frames_in_one_read() {
        let stream = [frame(b"MSH|one"), frame(b"MSH|two"), frame(b"MSH|three")].concat();
        let mut codec = MllpCodec::new(Framing::default(), MAX);
        let events = feed(&mut codec, &stream, &[]);
        assert_eq!(frames(&events), [&b"MSH|one"[..], b"MSH|two", b"MSH|three"]);
        assert_eq!(codec.ignored_bytes(), 0);
    }

    #[test]
    fn every_split_of_a_stream_yields_the_same_frames_and_junk() {
        let stream = [&b"junk"[..], &frame(b"MSH|a\rPID|1"), b"\r\n", &frame(b"MSH|b\x1cnot-end"), b"x"].concat();
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                let mut codec = MllpCodec::new(Framing::default(), MAX);
                let events = feed(&mut codec, &stream, &[a, b]);
                assert_eq!(frames(&events), [&b"MSH|a\rPID|1"[..], b"MSH|b\x1cnot-end"], "cuts at {a},{b}");
                assert_eq!(codec.ignored_bytes(), 4 + 2 + 1, "cuts at {a},{b}");
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let stream = [frame(b"MSH|x"), frame(b"MSH|y")].concat();
        let cuts: Vec<usize> = (1..stream.len()).collect();
        let mut codec = MllpCodec::new(Framing::default(), MAX);
        assert_eq!(frames(&feed(&mut codec, &stream, &cuts)), [&b"MSH|x"[..], b"MSH|y"]);
    }

    #[test]
    fn oversized_frame_is_reported_with_its_head_and_memory_stays_bounded() {
        let big = [b"MSH|^~\\&|A|B|C|D|1||ADT^A01|BIG1|P|2.5\r".as_slice(), &vec![b'x'; MAX * 3]].concat();
        let stream = [frame(&big), frame(b"MSH|after")].concat();
        let cuts: Vec<usize> = (1..stream.len() / 100).map(|i| i * 100).collect();
        let mut codec = MllpCodec::new(Framing::default(), MAX);
        let events = feed(&mut codec, &stream, &cuts);
        match &events[0] {
            MllpEvent::Oversized { head, limit } => {
                assert!(head.starts_with(b"MSH|^~\\&|A|B|C|D|1||ADT^A01|BIG1"));
                assert_eq!(*limit, MAX);
            }
            other => panic!("expected oversized, got {other:?}"),
        }
    }

    #[test]
    fn oversized_frame_arriving_whole_is_refused_too() {
        let stream = frame(&vec![b'x'; MAX + 1]);
        let mut codec = MllpCodec::new(Framing::default(), MAX);
        assert!(matches!(feed(&mut codec, &stream, &[])[..], [MllpEvent::Oversized { .. }]));
        let mut codec = MllpCodec::new(Framing::default(), MAX);
        assert_eq!(frames(&feed(&mut codec, &frame(&vec![b'x'; MAX]), &[])).len(), 1, "exactly the limit is allowed");
    }

    #[test]
    fn a_new_start_byte_abandons_the_partial_frame() {
        let stream = [&[START_BLOCK][..], b"MSH|lost", &frame(b"MSH|kept")].concat();
        let mut codec = MllpCodec::new(Framing::default(), MAX);
        assert_eq!(frames(&feed(&mut codec, &stream, &[3])), [&b"MSH|kept"[..]]);
        assert_eq!(codec.ignored_bytes(), 8);
    }

    #[test]
    fn unfinished_frame_at_eof_is_dropped_and_counted() {
        let stream = [frame(b"MSH|ok"), vec![START_BLOCK], b"MSH|cut".to_vec()].concat();
        let mut codec = MllpCodec::new(Framing::default(), MAX);
        assert_eq!(frames(&feed(&mut codec, &stream, &[])), [&b"MSH|ok"[..]]);
        assert_eq!(codec.ignored_bytes(), 7);
    }

    #[test]
    fn partial_frame_is_visible_for_timeouts() {
        let mut codec = MllpCodec::new(Framing::default(), MAX);
        let mut buf = BytesMut::from(&[&[START_BLOCK][..], b"MSH|^~\\&|slow"].concat()[..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(codec.in_frame());
        assert_eq!(codec.partial_frame(&buf), Some(&b"MSH|^~\\&|slow"[..]));
    }

    #[test]
    fn lenient_framing_without_trailing_cr_and_custom_markers() {
        let framing = Framing { start: b'<', end: b'>', trailing_cr: false };
        let stream = b"<MSH|a><MSH|b>\r<MSH|c>";
        for cut in 0..=stream.len() {
            let mut codec = MllpCodec::new(framing, MAX);
            assert_eq!(frames(&feed(&mut codec, stream, &[cut])), [&b"MSH|a"[..], b"MSH|b", b"MSH|c"], "cut {cut}");
            assert_eq!(codec.ignored_bytes(), 0, "cut {cut}");
        }
    }

    #[test]
    fn encodes_the_standard_envelope() {
        let mut codec = MllpCodec::new(Framing::default(), MAX);
        let mut out = BytesMut::new();
        codec.encode(&b"MSH|ack"[..], &mut out).unwrap();
        assert_eq!(&out[..], &frame(b"MSH|ack")[..]);
    }
}
