//! The MLLP decoder fed a byte stream cut into reads at arbitrary points:
//! it never panics, never holds more than `max_frame_size` plus one byte
//! between reads, and yields exactly the frames the reference splitter finds.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_fuzz::Choices;
use sluice_fuzz::codec::{Framing, MllpCodec, MllpEvent, OVERSIZED_HEAD};
use sluice_fuzz::reference::{self, Expected};
use tokio_util::codec::Decoder;

#[derive(Debug, PartialEq)]
enum Seen {
    Frame(Vec<u8>),
    Oversized,
}

fuzz_target!(|data: &[u8]| {
    let [size, mode, seed, stream @ ..] = data else { return };
    // Small limits, so that oversized frames are common.
    let max_frame_size = 1 + usize::from(*size) * 8;
    let framing = match mode % 3 {
        0 => Framing::default(),
        1 => Framing { trailing_cr: false, ..Framing::default() },
        _ => Framing { start: 0x02, end: 0x03, trailing_cr: false },
    };
    let mut choices = Choices::new(u64::from(*seed) << 32 | stream.len() as u64);
    let mut codec = MllpCodec::new(framing, max_frame_size);
    let mut buf = BytesMut::new();
    let mut seen = Vec::new();
    let mut rest = stream;
    let mut record = |event: MllpEvent, seen: &mut Vec<Seen>| match event {
        MllpEvent::Frame(frame) => seen.push(Seen::Frame(frame.to_vec())),
        MllpEvent::Oversized { head, limit } => {
            assert!(head.len() <= OVERSIZED_HEAD);
            assert_eq!(limit, max_frame_size);
            seen.push(Seen::Oversized);
        }
    };
    'reads: while !rest.is_empty() {
        // Mostly short reads, now and then a long one.
        let longest = if choices.next() % 4 == 0 { 4096 } else { 64 };
        let n = choices.size(longest).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(event) = codec.decode(&mut buf).expect("the decoder never fails") {
            record(event, &mut seen);
            // The connection closes after an oversized frame.
            if seen.last() == Some(&Seen::Oversized) {
                break 'reads;
            }
        }
        assert!(buf.len() <= max_frame_size + 1, "{} bytes held between reads, limit {max_frame_size}", buf.len());
    }
    if seen.last() != Some(&Seen::Oversized) {
        while let Some(event) = codec.decode_eof(&mut buf).expect("the decoder never fails") {
            record(event, &mut seen);
        }
    }

    let mut at = 0;
    for expected in reference::split(stream, framing, max_frame_size) {
        match expected {
            Expected::Frame(frame) => {
                assert_eq!(seen.get(at), Some(&Seen::Frame(frame)), "frame {at}");
                at += 1;
            }
            Expected::MustOversize => {
                assert_eq!(seen.get(at), Some(&Seen::Oversized), "event {at} must be the oversized frame");
                assert_eq!(seen.len(), at + 1);
                return;
            }
            Expected::MayOversize => {
                if seen.get(at) == Some(&Seen::Oversized) {
                    assert_eq!(seen.len(), at + 1);
                    return;
                }
            }
        }
    }
    assert_eq!(seen.len(), at, "the decoder found more than the reference: {:?}", &seen[at..]);
});
