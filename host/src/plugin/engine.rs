//! The one wasmtime `Engine` and `Linker` every plugin runs on: component
//! model, epoch interruption (a ticker thread advances the epoch every
//! millisecond), and the pooling allocator when the machine lets us reserve
//! its address space, with the on-demand allocator as the fallback.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::validator::Validator;
use super::mllp_client::MllpPool;
use super::state::PluginState;

/// How often the epoch advances: the granularity of plugin deadlines, and how
/// often a long-running plugin yields its thread to other connections.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Bytes of each pooled memory and table reset in place rather than released.
const KEEP_RESIDENT: usize = 4 << 20;

/// Plugin instances alive at once (each message's calls, kept instances).
const POOL_INSTANCES: u32 = 1000;

#[derive(Clone)]
pub struct PluginEngine {
    pub engine: Engine,
    pub linker: Arc<Linker<PluginState>>,
    /// Whether instances come from the pooling allocator.
    pub pooled: bool,
    /// The MLLP connections of every plugin's `mllp.send`.
    pub mllp: Arc<MllpPool>,
    /// TLS settings by outbound destination (MLLP and https).
    pub outbound_tls: crate::tls::OutboundTlsSet,
}

impl PluginEngine {
    /// `max_memory` is the largest memory limit any plugin is given: pool
    /// slots are sized for it. MLLP forwarding to the destinations in
    /// `outbound_tls` goes over TLS.
    pub fn new(max_memory: usize, outbound_tls: crate::tls::OutboundTlsSet) -> wasmtime::Result<PluginEngine> {
        super::priority::lower_compile_pool_priority();
        let (engine, pooled) = match Engine::new(&config(Some(max_memory))) {
            Ok(engine) => (engine, true),
            Err(err) => {
                tracing::info!("pooling allocator unavailable ({err}); plugins use on-demand allocation");
                (Engine::new(&config(None))?, false)
            }
        };
        start_epoch_ticker(&engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // wasi:http on top of it, each request checked against `allow.http`.
        super::http::add_to_linker(&mut linker)?;
        // The validator world imports every shared interface (types, message,
        // host); the router and connector worlds import the same ones.
        Validator::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |state| state)?;
        // The connector world adds MLLP forwarding.
        super::bindings::mllp::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |state| state)?;
        Ok(PluginEngine { engine, linker: Arc::new(linker), pooled, mllp: Arc::new(MllpPool::with_tls(outbound_tls.clone())), outbound_tls })
    }
}

fn config(pool_memory: Option<usize>) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    if let Some(max_memory) = pool_memory {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOL_INSTANCES)
            .total_core_instances(POOL_INSTANCES * 4)
            .total_memories(POOL_INSTANCES * 2)
            .total_tables(POOL_INSTANCES * 4)
            .total_stacks(POOL_INSTANCES)
            .max_memory_size(max_memory)
            // A slot is reused for the next call: reset only the pages the
            // last call dirtied (PAGEMAP_SCAN, Linux 6.7+) and keep them
            // resident, instead of unmapping them and faulting them back in.
            .pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Advances the engine's epoch until the engine is dropped. Without it no
/// deadline would ever fire, so failing to start it is an error.
fn start_epoch_ticker(engine: &Engine) -> wasmtime::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("sluice-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map_err(|err| wasmtime::format_err!("cannot start the plugin epoch thread: {err}"))?;
    Ok(())
}
