//! The Wasm side: wit-bindgen's bindings for `wit/`, kept out of sight.
//!
//! Each world is generated once here, with its export macro made public so
//! that `export_validator!` and friends can expand it in the plugin crate
//! (that is where the exported functions and the component-type section
//! describing the world must end up). The interfaces the worlds share are
//! generated with the validator and reused by the others through `with`, so
//! there is one `Message` resource type, not three.
//!
//! Every trait of the SDK is implemented for wit-bindgen's `Guest` traits by
//! a blanket impl below; conversions to and from the SDK's types live here
//! too, so nothing outside this file names a generated type.

use std::ptr;

use crate::log::Level;
use crate::{Connector, Delivery, Header, Issue, PathError, Router, SegmentRef, Validator, Verdict};

pub mod validator {
    wit_bindgen::generate!({
        world: "validator",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_validator",
    });
}

pub mod router {
    wit_bindgen::generate!({
        world: "router",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_router",
        with: {
            "sluice:plugin/host@0.1.0": crate::wasm::host,
            "sluice:plugin/message@0.1.0": crate::wasm::wit_message,
            "sluice:plugin/types@0.1.0": crate::wasm::wit_types,
        },
    });
}

pub mod connector {
    wit_bindgen::generate!({
        world: "connector",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_connector",
        with: {
            "sluice:plugin/host@0.1.0": crate::wasm::host,
            "sluice:plugin/message@0.1.0": crate::wasm::wit_message,
            "sluice:plugin/types@0.1.0": crate::wasm::wit_types,
        },
    });
}

use validator::sluice::plugin::{host, message as wit_message, types as wit_types};

/// The host's message resource, borrowed for the duration of one call.
#[repr(transparent)]
pub(crate) struct Message(wit_message::Message);

impl Message {
    pub(crate) fn raw(&self) -> Vec<u8> {
        self.0.raw()
    }

    pub(crate) fn header(&self) -> Header {
        let h = self.0.header();
        Header {
            sending_application: h.sending_application,
            sending_facility: h.sending_facility,
            receiving_application: h.receiving_application,
            receiving_facility: h.receiving_facility,
            timestamp: h.timestamp,
            message_code: h.message_code,
            trigger_event: h.trigger_event,
            message_structure: h.message_structure,
            control_id: h.control_id,
            processing_id: h.processing_id,
            version: h.version,
        }
    }

    pub(crate) fn get(&self, path: &str) -> Result<Option<String>, PathError> {
        self.0.get(path).map_err(PathError)
    }

    pub(crate) fn get_raw(&self, path: &str) -> Result<Option<Vec<u8>>, PathError> {
        self.0.get_raw(path).map_err(PathError)
    }

    pub(crate) fn repetitions(&self, path: &str) -> Result<u32, PathError> {
        self.0.repetitions(path).map_err(PathError)
    }

    pub(crate) fn count(&self, segment_id: &str) -> u32 {
        self.0.count(segment_id)
    }

    pub(crate) fn segments(&self) -> Vec<SegmentRef> {
        self.0.segments().into_iter().map(|s| SegmentRef { id: s.id, occurrence: s.occurrence }).collect()
    }
}

/// The SDK's view of the borrowed resource wit-bindgen hands an export.
fn view(msg: &wit_message::Message) -> &crate::Message {
    // SAFETY: `crate::Message` and `Message` are both `repr(transparent)`
    // around `wit_message::Message`, so the layouts are identical, and the
    // returned reference borrows from `msg`.
    unsafe { &*ptr::from_ref(msg).cast::<crate::Message>() }
}

pub(crate) fn settings_json() -> String {
    host::settings()
}

pub(crate) fn log(level: Level, text: &str) {
    let level = match level {
        Level::Trace => host::Level::Trace,
        Level::Debug => host::Level::Debug,
        Level::Info => host::Level::Info,
        Level::Warn => host::Level::Warn,
        Level::Error => host::Level::Error,
    };
    host::log(level, text);
}

/// Reached only from [`crate::mllp::send`], so only connectors that forward
/// over MLLP import `sluice:plugin/mllp`: the linker drops it elsewhere.
pub(crate) fn mllp_send(destination: &str, message: &[u8], timeout_ms: u32) -> Result<crate::mllp::Ack, crate::mllp::SendError> {
    use crate::mllp::{Ack, SendError};
    use connector::sluice::plugin::mllp as wit_mllp;

    match wit_mllp::send(destination, message, timeout_ms) {
        Ok(ack) => Ok(Ack { code: ack.code, text: ack.text, raw: ack.raw }),
        Err(wit_mllp::SendError::Denied(why)) => Err(SendError::Denied(why)),
        Err(wit_mllp::SendError::Unavailable(why)) => Err(SendError::Unavailable(why)),
        Err(wit_mllp::SendError::BadAck(why)) => Err(SendError::BadAck(why)),
    }
}

impl<T: Validator> validator::Guest for T {
    fn validate(msg: &wit_message::Message) -> wit_types::Verdict {
        match T::validate(view(msg)) {
            Verdict::Accept => wit_types::Verdict::Accept,
            Verdict::Reject(issue) => wit_types::Verdict::Reject(issue.into()),
            Verdict::Error(issue) => wit_types::Verdict::Error(issue.into()),
        }
    }
}

impl<T: Router> router::Guest for T {
    fn route(msg: &wit_message::Message, connector: String) -> Result<bool, wit_types::Issue> {
        T::route(view(msg), &connector).map_err(Into::into)
    }
}

impl<T: Connector> connector::Guest for T {
    fn deliver(msg: &wit_message::Message, attempt: u32) -> wit_types::Delivery {
        match T::deliver(view(msg), attempt) {
            Delivery::Delivered => wit_types::Delivery::Delivered,
            Delivery::Retry(reason) => wit_types::Delivery::Retry(reason),
            Delivery::Reject(reason) => wit_types::Delivery::Reject(reason),
        }
    }
}

impl From<Issue> for wit_types::Issue {
    fn from(issue: Issue) -> wit_types::Issue {
        wit_types::Issue { text: issue.text, code: issue.code.0, location: issue.location }
    }
}
