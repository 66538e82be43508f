//! The MLLP framing of HL7 v2 appendix C, read the simplest way: the whole
//! stream at once, one byte after another. The decoder must find the same
//! frames whatever the reads it is given.

use crate::codec::{CARRIAGE_RETURN, Framing};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    Frame(Vec<u8>),
    /// A frame longer than the limit that ended with its end marker: the
    /// decoder must report it (and the connection closes there).
    MustOversize,
    /// A frame that grew past the limit and was then abandoned by a new start
    /// byte (or by the end of the stream): whether the decoder saw the excess
    /// before the start byte depends on how the reads were cut, so it may
    /// report it or silently drop the partial frame.
    MayOversize,
}

pub fn split(stream: &[u8], framing: Framing, max_frame_size: usize) -> Vec<Expected> {
    let mut out = Vec::new();
    let mut i = 0;
    // Between frames.
    'outside: loop {
        while i < stream.len() && stream[i] != framing.start {
            i += 1;
        }
        if i >= stream.len() {
            return out;
        }
        i += 1;
        // Inside a frame that started at `begin`.
        let mut begin = i;
        loop {
            if i >= stream.len() {
                if i - begin > max_frame_size {
                    out.push(Expected::MayOversize);
                }
                return out;
            }
            let b = stream[i];
            if b == framing.start {
                if i - begin > max_frame_size {
                    out.push(Expected::MayOversize);
                }
                i += 1;
                begin = i;
                continue;
            }
            if b == framing.end {
                let ends = if framing.trailing_cr {
                    match stream.get(i + 1) {
                        Some(&CARRIAGE_RETURN) => true,
                        Some(_) => false,
                        // Cut off before its CR: an unfinished frame.
                        None => {
                            if i + 1 - begin > max_frame_size {
                                out.push(Expected::MayOversize);
                            }
                            return out;
                        }
                    }
                } else {
                    true
                };
                if ends {
                    let payload = &stream[begin..i];
                    if payload.len() > max_frame_size {
                        out.push(Expected::MustOversize);
                        return out;
                    }
                    out.push(Expected::Frame(payload.to_vec()));
                    i += 1;
                    // The CR of the trailer (optional where the framing does not require it).
                    if stream.get(i) == Some(&CARRIAGE_RETURN) {
                        i += 1;
                    }
                    continue 'outside;
                }
            }
            i += 1;
        }
    }
}
