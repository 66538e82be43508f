//! What a plugin's store holds for one call, and the host side of the
//! `message` and `host` interfaces. A store lives for one message (or, for a
//! plugin configured with `keep_state`, for as long as its instance).

use std::sync::Arc;
use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::{host, message, mllp, types};
use super::http::{HttpGate, HttpGrant};
use super::limiter::MemoryLimiter;
use super::mllp_client::MllpAccess;
use crate::hl7::{FieldPath, Message, escape};

/// The host resource behind a plugin's `message` handle.
pub struct MessageRef(pub Arc<Message>);

/// How much of a plugin's stderr (a panic message, say) is kept for the log.
const STDERR_CAPTURE: usize = 4096;

pub struct PluginState {
    pub(super) plugin: Arc<str>,
    settings: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    limits: MemoryLimiter,
    stderr: MemoryOutputPipe,
    http: WasiHttpCtx,
    http_gate: HttpGate,
    mllp: MllpAccess,
}

/// The network a plugin may reach: hosts for wasi:http, MLLP destinations.
#[derive(Clone)]
pub struct NetGrants {
    pub http: Arc<[HttpGrant]>,
    pub mllp: MllpAccess,
    /// TLS settings of outbound destinations (for https).
    pub tls: crate::tls::OutboundTlsSet,
}

impl PluginState {
    pub(super) fn new(plugin: Arc<str>, settings: Arc<str>, mut wasi: wasmtime_wasi::WasiCtxBuilder, limits: MemoryLimiter, net: NetGrants) -> PluginState {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        wasi.stderr(stderr.clone());
        let http_gate = HttpGate { plugin: plugin.clone(), grants: net.http, tls: net.tls };
        PluginState { plugin, settings, wasi: wasi.build(), table: ResourceTable::new(), limits, stderr, http: WasiHttpCtx::new(), http_gate, mllp: net.mllp }
    }

    pub(super) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limits
    }

    /// The largest linear memory this instance has had, in bytes.
    pub(super) fn peak_memory(&self) -> usize {
        self.limits.peak()
    }

    pub(super) fn set_settings(&mut self, settings: Arc<str>) {
        self.settings = settings;
    }

    pub(super) fn lend(&mut self, message: Arc<Message>) -> wasmtime::Result<Resource<MessageRef>> {
        Ok(self.table.push(MessageRef(message))?)
    }

    pub(super) fn take_back(&mut self, handle: Resource<MessageRef>) {
        let _ = self.table.delete(handle);
    }

    /// What the plugin wrote to stderr (Rust panics land here), for the log.
    pub(super) fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).trim().to_string()
    }

    fn message(&self, handle: &Resource<MessageRef>) -> wasmtime::Result<&Message> {
        Ok(&self.table.get(handle)?.0)
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.http_gate }
    }
}

impl types::Host for PluginState {}

impl mllp::Host for PluginState {
    async fn send(&mut self, destination: String, message: Vec<u8>, timeout_ms: u32) -> wasmtime::Result<Result<mllp::Ack, mllp::SendError>> {
        let MllpAccess { pool, allowed } = &self.mllp;
        Ok(pool.send(&self.plugin, allowed, &destination, &message, Duration::from_millis(timeout_ms.into())).await)
    }
}

impl host::Host for PluginState {
    fn log(&mut self, level: host::Level, text: String) -> wasmtime::Result<()> {
        let plugin = &*self.plugin;
        match level {
            host::Level::Trace => tracing::trace!(target: "sluice::plugin", plugin, "{text}"),
            host::Level::Debug => tracing::debug!(target: "sluice::plugin", plugin, "{text}"),
            host::Level::Info => tracing::info!(target: "sluice::plugin", plugin, "{text}"),
            host::Level::Warn => tracing::warn!(target: "sluice::plugin", plugin, "{text}"),
            host::Level::Error => tracing::error!(target: "sluice::plugin", plugin, "{text}"),
        }
        Ok(())
    }

    fn settings(&mut self) -> wasmtime::Result<String> {
        Ok(self.settings.to_string())
    }
}

impl message::Host for PluginState {}

impl message::HostMessage for PluginState {
    fn raw(&mut self, msg: Resource<MessageRef>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.message(&msg)?.raw().to_vec())
    }

    fn header(&mut self, msg: Resource<MessageRef>) -> wasmtime::Result<message::Header> {
        let m = self.message(&msg)?;
        let h = m.header();
        // The parsed header already holds these fields: decode their first
        // component rather than looking each up by path again.
        let delims = m.delimiters();
        let first = |field: &[u8], n: usize| -> String {
            let part = field.split(|&b| b == delims.component).nth(n).unwrap_or_default();
            escape::unescape(part, delims, m.charset())
        };
        let timestamp = "MSH-7.1".parse().ok().and_then(|p: FieldPath| m.text_at(&p)).unwrap_or_default();
        Ok(message::Header {
            sending_application: first(&h.sending_application, 0),
            sending_facility: first(&h.sending_facility, 0),
            receiving_application: first(&h.receiving_application, 0),
            receiving_facility: first(&h.receiving_facility, 0),
            timestamp,
            message_code: first(&h.message_type, 0),
            trigger_event: first(&h.message_type, 1),
            message_structure: first(&h.message_type, 2),
            control_id: first(&h.control_id, 0),
            processing_id: first(&h.processing_id, 0),
            version: first(&h.version, 0),
        })
    }

    fn get(&mut self, msg: Resource<MessageRef>, path: String) -> wasmtime::Result<Result<Option<String>, String>> {
        let m = self.message(&msg)?;
        Ok(parse_path(&path).map(|p| m.raw_at(&p).filter(|raw| !raw.is_empty()).map(|raw| escape::unescape(raw, m.delimiters(), m.charset()))))
    }

    fn get_raw(&mut self, msg: Resource<MessageRef>, path: String) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
        let m = self.message(&msg)?;
        Ok(parse_path(&path).map(|p| m.raw_at(&p).filter(|raw| !raw.is_empty()).map(<[u8]>::to_vec)))
    }

    fn repetitions(&mut self, msg: Resource<MessageRef>, path: String) -> wasmtime::Result<Result<u32, String>> {
        let m = self.message(&msg)?;
        Ok(parse_path(&path).map(|p| m.repetitions(&p).try_into().unwrap_or(u32::MAX)))
    }

    fn count(&mut self, msg: Resource<MessageRef>, segment_id: String) -> wasmtime::Result<u32> {
        let m = self.message(&msg)?;
        Ok(m.segment_ids().filter(|id| *id == segment_id.as_bytes()).count().try_into().unwrap_or(u32::MAX))
    }

    fn segments(&mut self, msg: Resource<MessageRef>) -> wasmtime::Result<Vec<message::SegmentRef>> {
        let m = self.message(&msg)?;
        let mut seen: Vec<(&[u8], u32)> = Vec::new();
        Ok(m.segment_ids()
            .map(|id| {
                let occurrence = match seen.iter_mut().find(|(s, _)| *s == id) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        seen.push((id, 1));
                        1
                    }
                };
                message::SegmentRef { id: String::from_utf8_lossy(id).into_owned(), occurrence }
            })
            .collect())
    }

    fn drop(&mut self, msg: Resource<MessageRef>) -> wasmtime::Result<()> {
        self.table.delete(msg)?;
        Ok(())
    }
}

fn parse_path(path: &str) -> Result<FieldPath, String> {
    path.parse().map_err(|err: crate::hl7::PathError| err.to_string())
}
