//! The deadline counts the plugin's own running time, not its waits in
//! async host calls. A hand-assembled core module stands in for a plugin:
//! `run` calls the async host function `env.wait` three times from a loop
//! (each return lands on a loop header, where the epoch is checked), and
//! `spin` loops forever.

use std::time::{Duration, Instant};

use wasmtime::{Linker, Module};

use super::*;

#[rustfmt::skip]
const MODULE: &[u8] = &[
    0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00,
    // type 0: () -> ()
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
    // import env.wait: type 0
    0x02, 0x0C, 0x01, 0x03, b'e', b'n', b'v', 0x04, b'w', b'a', b'i', b't', 0x00, 0x00,
    // two functions of type 0
    0x03, 0x03, 0x02, 0x00, 0x00,
    // export run = 1, spin = 2
    0x07, 0x0E, 0x02, 0x03, b'r', b'u', b'n', 0x00, 0x01, 0x04, b's', b'p', b'i', b'n', 0x00, 0x02,
    0x0A, 0x20, 0x02,
    // run: (local i32) i32.const 3, local.set 0, loop { call wait, local.tee 0 (local 0 - 1), br_if 0 }
    0x16, 0x01, 0x01, 0x7F, 0x41, 0x03, 0x21, 0x00, 0x03, 0x40, 0x10, 0x00, 0x20, 0x00, 0x41, 0x01, 0x6B, 0x22, 0x00, 0x0D, 0x00, 0x0B, 0x0B,
    // spin: loop { br 0 }
    0x07, 0x00, 0x03, 0x40, 0x0C, 0x00, 0x0B, 0x0B,
];

const DEADLINE: Duration = Duration::from_millis(50);
const WAIT: Duration = Duration::from_millis(100);

async fn store_with(export: &str) -> (Store<PluginState>, wasmtime::TypedFunc<(), ()>) {
    let engine = PluginEngine::new(1 << 20, Default::default()).unwrap();
    let policy = PluginPolicy { deadline: DEADLINE, ..PluginPolicy::default() };
    let state = PluginState::new(Arc::from("clock"), Arc::from("{}"), wasi_grants(&policy).unwrap(), MemoryLimiter::new(1 << 20), net_grants(&engine, &policy));
    let mut store = Store::new(&engine.engine, state);
    let mut linker = Linker::new(&engine.engine);
    // Stands in for an MLLP send or an HTTP response: a wait in the host.
    linker.func_wrap_async("env", "wait", |_, (): ()| Box::new(tokio::time::sleep(WAIT))).unwrap();
    let module = Module::new(&engine.engine, MODULE).unwrap();
    arm_deadline(&mut store, &policy);
    let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
    let func = instance.get_typed_func::<(), ()>(&mut store, export).unwrap();
    arm_deadline(&mut store, &policy);
    (store, func)
}

#[tokio::test]
async fn waiting_in_host_calls_does_not_use_up_the_deadline() {
    let (mut store, run) = store_with("run").await;
    let started = Instant::now();
    run.call_async(&mut store, ()).await.expect("three waits of 100 ms fit a 50 ms deadline of running time");
    assert!(started.elapsed() >= 3 * WAIT);
}

#[tokio::test]
async fn a_plugin_that_computes_still_traps_near_its_deadline() {
    let (mut store, spin) = store_with("spin").await;
    let started = Instant::now();
    let err = spin.call_async(&mut store, ()).await.unwrap_err();
    let took = started.elapsed();
    assert!(err.downcast_ref::<DeadlineReached>().is_some(), "{err:?}");
    // Each tick is at least a millisecond of wall time; on a loaded machine
    // the running time may come slower.
    assert!(took >= DEADLINE * 9 / 10 && took < Duration::from_secs(5), "trapped after {took:?}");
}

#[test]
fn a_deadline_is_whole_ticks_and_at_least_one() {
    assert_eq!(ticks(Duration::from_millis(250)), 250);
    assert_eq!(ticks(Duration::from_micros(1500)), 2);
    assert_eq!(ticks(Duration::from_nanos(1)), 1);
    assert_eq!(ticks(Duration::ZERO), 1);
}
