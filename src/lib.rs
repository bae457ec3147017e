//! # rings-node
//!
//! A structured peer-to-peer network that runs in the browser: a Chord DHT over
//! decentralized identifiers, as one pure, sans-IO core driven by thin shells.
//!
//! - [`Did`]: 160-bit identifiers (Ethereum addresses for accounts, sha1 for resources).
//! - [`chord::Node`]: one ring node as a state machine. Inputs carry `now`
//!   (`handle_message`, `handle_timeout`, `handle_peer_down`, `join`, `lookup`, `leave`);
//!   outputs are polled (`poll_transmit`, `poll_event`, `poll_timeout`). See the run-loop
//!   contract on [`chord::Node`]'s module.
//! - [`sim`]: a deterministic network emulator with virtual time that drives many nodes
//!   (native only).
//! - `web` (wasm32 only): the browser shell.
//!
//! The core never reads a clock, performs IO, takes a lock or draws global randomness.
//!
//! ```
//! # #[cfg(not(target_arch = "wasm32"))] { // the simulator is native-only
//! use rings_node::sim::{scenario, Outcome, Sim, SimConfig};
//!
//! // 200 nodes join a ring in virtual time, then one asks who owns a name.
//! let mut sim = Sim::new(SimConfig { seed: 7, ..SimConfig::default() })?;
//! scenario::grow_in_waves(&mut sim, 200, 2);
//! let node = sim.random_member().expect("a member");
//! let key = rings_node::Did::from_name(b"my-service");
//! let id = sim.lookup(node, key);
//! sim.run_for(rings_node::Duration::from_secs(2));
//! match sim.outcome(node, id) {
//!     Some(Outcome::Found { owner, hops, correct }) => {
//!         assert!(correct);
//!         assert_eq!(Some(owner), sim.oracle().successor_of(key));
//!         println!("{key} is owned by {owner}, found in {hops} hops");
//!     }
//!     other => panic!("lookup did not finish: {other:?}"),
//! }
//! # }
//! # Ok::<(), rings_node::chord::ConfigError>(())
//! ```

pub mod api;
pub mod bench;
mod byte_array;
pub mod chord;
pub mod did;
pub mod identity;
pub mod link;
pub mod node;
pub mod rng;
pub mod signal;
#[cfg(not(target_arch = "wasm32"))]
pub mod sim;
pub mod store;
pub mod time;
#[cfg(target_arch = "wasm32")]
pub mod web;
pub mod wire;

pub use did::{Did, DidError};
pub use node::{Event, Identity, LinkFrame, Node, NodeConfig, Transmit};
pub use rng::SeededRng;
pub use time::{Duration, Instant};
