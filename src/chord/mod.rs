//! Chord over the 160-bit DID ring, as a pure state machine.

mod config;
mod maintain;
pub mod message;
mod node;
mod route;
pub mod table;

pub use config::{Config, ConfigError};
pub use message::{DecodeError, FailReason, FindSuccessor, Message};
pub use node::{Event, LookupError, Node, RequestId, Stats, Transmit};
pub use table::RoutingTable;
