//! Sluice: an HL7 v2 integration engine. The modules follow the message path:
//! `mllp` (transport) → `hl7` (parsing) → `pipeline` (validate and route,
//! with `plugin`s) → `outbox` (durable store) → `ack` (the answer), then
//! `delivery` (one worker per connector, through connector `plugin`s).
//! `admin` serves health, `metrics` and the API the CLI uses; `tls` is the
//! rustls side of the listener and of outbound connections.

pub mod ack;
pub mod admin;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod interface;
pub mod journal;
pub use sluice_hl7 as hl7;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod mllp;
pub mod outbox;
pub mod pipeline;
pub mod plugin;
pub mod reload;
pub mod send;
pub mod server;
pub mod tls;
