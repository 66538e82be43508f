//! What the fuzz targets test: the engine's own sources, compiled here as
//! they are (`#[path]`), so the fuzzers exercise exactly the code that
//! reads peers' bytes; and a reference MLLP splitter to compare against.

pub use sluice_hl7 as hl7;

#[path = "../../../host/src/mllp/codec.rs"]
pub mod codec;

#[path = "../../../host/src/ack/mod.rs"]
pub mod ack;

pub mod reference;

/// A small deterministic generator (xorshift64) for the targets' choices.
pub struct Choices(u64);

impl Choices {
    pub fn new(seed: u64) -> Choices {
        Choices(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `1..=max`.
    pub fn size(&mut self, max: usize) -> usize {
        1 + (self.next() % max as u64) as usize
    }
}
