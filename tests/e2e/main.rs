//! End-to-end tests: each starts the real `sluice` binary on a free port with
//! its own temporary data directory and talks to it over TCP.

mod support;

mod admin;
mod bad_input;
mod config;
mod delivery;
mod durability;
mod ingest;
mod interfaces;
mod interop;
mod journal;
mod languages;
mod plugin_check;
mod plugins;
mod tls;
mod operations;
mod console;
mod crash_drill;
mod disk;
mod storms;
