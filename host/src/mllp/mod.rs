//! MLLP transport: the framing codec, one task per connection, the listener.

mod codec;
mod connection;
mod listener;

pub use codec::{CARRIAGE_RETURN, END_BLOCK, Framing, MllpCodec, MllpEvent, START_BLOCK};
pub use connection::ConnectionLimits;
pub use listener::{Listener, Slots, slots};
