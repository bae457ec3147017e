//! Chord over the 160-bit DID ring, as a pure state machine.
//!
//! - `node`: the state machine, its inputs and outputs (the run-loop contract);
//! - `route`: lookups, answered back along their own path;
//! - `maintain`: join, stabilize, notify / rectify, rejoin, merge (Zave's rules, named there);
//! - `liveness`: strikes, direct checks, confirmed failures;
//! - `fingers`: finger sweeps checked by ping, paused while idle;
//! - `table`: the routing table's geometry.

mod config;
mod fingers;
mod liveness;
mod maintain;
pub mod message;
mod node;
mod output;
mod route;
pub mod table;

pub use config::{Config, ConfigError};
pub use message::{Check, DecodeError, FailReason, FindSuccessor, Message};
pub use node::Node;
pub use output::{Event, LookupAnswer, LookupError, RequestId, Stats, Transmit};
pub use table::RoutingTable;
