//! The stock plugins, compiled to wasm32-wasip2 by `host/build.rs` and built
//! into the binary, so `sluice serve` finds them with no plugins folder. A
//! file of the same name in the plugins folder takes precedence.

/// (name, component bytes)
pub const BUILTIN: &[(&str, &[u8])] = &[
    ("require-fields", include_bytes!(concat!(env!("OUT_DIR"), "/require-fields.wasm"))),
    ("match", include_bytes!(concat!(env!("OUT_DIR"), "/match.wasm"))),
    ("http", include_bytes!(concat!(env!("OUT_DIR"), "/http.wasm"))),
    ("mllp", include_bytes!(concat!(env!("OUT_DIR"), "/mllp.wasm"))),
    ("file", include_bytes!(concat!(env!("OUT_DIR"), "/file.wasm"))),
];
