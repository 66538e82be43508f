//! `sluice send`: an MLLP client that sends files and prints their ACKs, and
//! a load generator that reports throughput and ACK latency percentiles.

mod client;
mod files;
mod load;
mod sample;

pub use client::{AckSummary, MllpClient};
pub use files::messages_in;
pub use load::{LoadOptions, LoadReport, run_load};
pub use sample::adt_a01;
