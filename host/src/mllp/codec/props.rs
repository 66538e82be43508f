//! Property tests: any sequence of valid frames interleaved with junk,
//! delivered in any split of reads, yields the same frames in order and
//! counts exactly the junk as ignored, in the standard framing and in a
//! lenient one without the trailing CR.

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::Decoder;

use super::{CARRIAGE_RETURN, END_BLOCK, Framing, MllpCodec, MllpEvent, START_BLOCK};

const MAX: usize = 4096;

/// Payload bytes: anything but the frame markers.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>().prop_filter("no markers", |b| *b != START_BLOCK && *b != END_BLOCK), 0..300)
}

/// Junk between frames: anything but the start byte. In the lenient framing
/// a CR just after a frame belongs to its trailer, so junk there never starts with one.
fn junk() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>().prop_filter("no start byte", |b| *b != START_BLOCK), 0..40)
}

fn decode_all(framing: Framing, stream: &[u8], cuts: &[usize]) -> (Vec<Vec<u8>>, u64) {
    let mut codec = MllpCodec::new(framing, MAX);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut from = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    cuts.sort_unstable();
    for cut in cuts.into_iter().chain([stream.len()]) {
        buf.extend_from_slice(&stream[from..cut]);
        from = cut;
        while let Some(event) = codec.decode(&mut buf).expect("the decoder never fails") {
            match event {
                MllpEvent::Frame(frame) => frames.push(frame.to_vec()),
                MllpEvent::Oversized { .. } => panic!("no frame here is oversized"),
            }
        }
        assert!(buf.len() <= MAX + stream.len(), "the buffer stays bounded");
    }
    while let Some(event) = codec.decode_eof(&mut buf).expect("the decoder never fails") {
        if let MllpEvent::Frame(frame) = event {
            frames.push(frame.to_vec());
        }
    }
    (frames, codec.ignored_bytes())
}

proptest! {
    #[test]
    fn frames_and_junk_in_any_split_give_the_frames_and_the_junk_count(
        parts in prop::collection::vec((junk(), payload()), 0..8),
        tail in junk(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut stream = Vec::new();
        let mut junk_bytes = 0u64;
        for (junk, payload) in &parts {
            stream.extend_from_slice(junk);
            junk_bytes += junk.len() as u64;
            stream.push(START_BLOCK);
            stream.extend_from_slice(payload);
            stream.extend_from_slice(&[END_BLOCK, CARRIAGE_RETURN]);
        }
        stream.extend_from_slice(&tail);
        junk_bytes += tail.len() as u64;
        let expected: Vec<Vec<u8>> = parts.iter().map(|(_, p)| p.clone()).collect();
        let (frames, ignored) = decode_all(Framing::default(), &stream, &cuts);
        prop_assert_eq!(frames, expected);
        prop_assert_eq!(ignored, junk_bytes);
    }

    #[test]
    fn lenient_framing_without_the_cr_gives_the_same_frames(
        parts in prop::collection::vec((junk(), payload(), any::<bool>()), 0..8),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let framing = Framing { trailing_cr: false, ..Framing::default() };
        let mut stream = Vec::new();
        let mut junk_bytes = 0u64;
        let mut after_end = false;
        for (junk, payload, with_cr) in &parts {
            // A CR right after an end byte is trailer, not junk.
            let junk: &[u8] = if after_end && junk.first() == Some(&CARRIAGE_RETURN) { &junk[1..] } else { junk };
            stream.extend_from_slice(junk);
            junk_bytes += junk.len() as u64;
            stream.push(START_BLOCK);
            stream.extend_from_slice(payload);
            stream.push(END_BLOCK);
            if *with_cr {
                stream.push(CARRIAGE_RETURN);
            }
            after_end = !with_cr;
        }
        let expected: Vec<Vec<u8>> = parts.iter().map(|(_, p, _)| p.clone()).collect();
        let (frames, ignored) = decode_all(framing, &stream, &cuts);
        prop_assert_eq!(frames, expected);
        prop_assert_eq!(ignored, junk_bytes);
    }
}
