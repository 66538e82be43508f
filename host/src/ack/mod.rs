//! Acknowledgements (HL7 v2 chapter 2.9): which code a message gets, whether
//! an ACK is sent at all, and the ACK's bytes.

mod builder;
mod issue;
mod mode;

pub use builder::{AckStamp, build_ack, build_ack_without_header};
pub use issue::{ErrorCode, Issue};
pub use mode::{AcceptCondition, AckCode, AckMode, Outcome};

#[cfg(test)]
mod tests;
