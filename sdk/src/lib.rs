//! Write Sluice plugins in Rust.
//!
//! A plugin is a WebAssembly component (`wasm32-wasip2`) for one of three
//! worlds of the WIT package `sluice:plugin` (`wit/` in the repository):
//! implement [`Validator`], [`Router`] or [`Connector`] and name the type in
//! [`export_validator!`], [`export_router!`] or [`export_connector!`]. The
//! message arrives as a [`Message`] read by HL7 path; the plugin answers
//! with a [`Verdict`], a `Result<bool, Issue>` or a [`Delivery`].
//!
//! ```
//! use sluice_sdk::{ErrorCode, Issue, Message, Validator, Verdict};
//!
//! /// Takes only production messages (MSH-11 = `P`).
//! pub struct ProductionOnly;
//!
//! impl Validator for ProductionOnly {
//!     fn validate(msg: &Message) -> Verdict {
//!         match msg.header().processing_id.as_str() {
//!             "P" => Verdict::Accept,
//!             other => {
//!                 let text = format!("processing ID `{other}` is not accepted here");
//!                 Verdict::Reject(Issue::new(ErrorCode::UNSUPPORTED_PROCESSING_ID, text).at("MSH-11"))
//!             }
//!         }
//!     }
//! }
//!
//! sluice_sdk::export_validator!(ProductionOnly);
//! ```
//!
//! Settings come from the engine's configuration through [`settings()`]
//! (with [`settings::duration`] for time spans); [`log`] writes to the
//! engine's log.
//!
//! A connector may forward over MLLP through the host with [`mllp::send`]:
//! `mllp::send("lis:2575", &msg.raw(), Duration::from_secs(30))` answers the
//! receiver's [`mllp::Ack`] (MSA-1 code, text, raw ACK, its MSA-2 already
//! checked against MSH-10) or a [`mllp::SendError`]: `Denied` (destination not
//! granted with `allow.mllp`, or no MSH-10), `Unavailable` (no connection or
//! no ACK in time: the receiver may or may not have it) or `BadAck` (not an
//! ACK for this message; never a success). Only connectors import it.
//!
//! The same code runs natively in unit tests through [`testing`] (native
//! targets only), where the SDK plays the host: [`testing::with_mllp`] plays
//! the MLLP destinations too.

pub mod log;
mod message;
pub mod mllp;
mod path;
pub mod settings;
mod types;
mod worlds;

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
#[cfg(target_arch = "wasm32")]
mod wasm;

#[cfg(not(target_arch = "wasm32"))]
use native as backend;
#[cfg(target_arch = "wasm32")]
use wasm as backend;

pub use message::{Header, Message, SegmentRef};
pub use path::{FieldPath, PathError, parse_path};
pub use settings::settings;
pub use types::{Delivery, ErrorCode, Issue, Verdict};
pub use worlds::{Connector, Router, Validator};

/// What the export macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    #[cfg(target_arch = "wasm32")]
    pub use crate::wasm::{connector, router, validator};

    pub const fn assert_validator<T: crate::Validator>() {}
    pub const fn assert_router<T: crate::Router>() {}
    pub const fn assert_connector<T: crate::Connector>() {}
}
