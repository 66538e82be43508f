//! The three kinds of plugin, one per WIT world: a trait to implement and a
//! macro that makes the implementing type the component's export.
//!
//! The traits have no `self`: the host may create a fresh instance for
//! every message, so there is no state worth carrying between calls. Read
//! the configuration with [`crate::settings`] inside the call.

use crate::{Delivery, Issue, Message, Verdict};

/// Checks a message before it is stored and acknowledged (world
/// `validator`). Validators run in the configured order; the first that
/// does not accept decides the ACK.
pub trait Validator {
    fn validate(msg: &Message) -> Verdict;
}

/// Decides whether a connector takes a message (world `router`).
/// `connector` is the name of the connector asking. An `Err` means the
/// message cannot be routed now: the sender gets AE and may retry.
pub trait Router {
    fn route(msg: &Message, connector: &str) -> Result<bool, Issue>;
}

/// Delivers stored messages to one destination, oldest first (world
/// `connector`). Called again with the same message after a
/// [`Delivery::Retry`], with `attempt` counting from 1.
pub trait Connector {
    fn deliver(msg: &Message, attempt: u32) -> Delivery;
}

/// Makes a type that implements [`Validator`] this plugin's export. Use it
/// once, in the crate root, with a type name in scope (not a path).
///
/// Natively it only checks the trait is implemented, so the same crate
/// builds for unit tests.
#[macro_export]
macro_rules! export_validator {
    ($ty:ident) => {
        const _: () = $crate::__private::assert_validator::<$ty>();
        #[cfg(target_arch = "wasm32")]
        $crate::__private::validator::__export_validator!($ty with_types_in $crate::__private::validator);
    };
}

/// Makes a type that implements [`Router`] this plugin's export; see
/// [`export_validator!`].
#[macro_export]
macro_rules! export_router {
    ($ty:ident) => {
        const _: () = $crate::__private::assert_router::<$ty>();
        #[cfg(target_arch = "wasm32")]
        $crate::__private::router::__export_router!($ty with_types_in $crate::__private::router);
    };
}

/// Makes a type that implements [`Connector`] this plugin's export; see
/// [`export_validator!`].
#[macro_export]
macro_rules! export_connector {
    ($ty:ident) => {
        const _: () = $crate::__private::assert_connector::<$ty>();
        #[cfg(target_arch = "wasm32")]
        $crate::__private::connector::__export_connector!($ty with_types_in $crate::__private::connector);
    };
}
