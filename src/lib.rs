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
//! - [`Node`]: the composite node (ring, signed and sealed wire, store, link manager);
//!   [`api::Front`] adds an application's requests to it (what the browser's `Provider`
//!   and the native node's JSON-RPC show).
//! - [`sim`]: a deterministic network emulator with virtual time that drives many nodes
//!   (native only).
//! - `web` (wasm32 only): the browser shell.
//!
//! The core never reads a clock, performs IO, takes a lock or draws global randomness.
//!
//! ## The run loop
//!
//! Every driver of a [`Node`] (the browser, the native node, the simulator) follows one
//! contract, and every `poll_*` is `#[must_use]`:
//!
//! 1. Feed each input with the current time: a timer ([`Node::handle_timeout`]), an
//!    application call ([`Node::send`], [`Node::connect`], [`Node::put`] …), or what a
//!    connection did ([`Node::handle_link_open`] / `_closed` / `_frame` / `_buffered`,
//!    [`Node::handle_local_description`] / `_candidate`).
//! 2. Drain [`Node::poll_link`] (perform each [`node::LinkIo`] on a real connection),
//!    then [`Node::poll_event`]; then report the buffered amount of each connection the
//!    link manager is owed credit on ([`link::Links::owed`]). Repeat until all are quiet.
//! 3. Sleep until [`Node::poll_timeout`] or the next input.
//!
//! Without link mode (the simulator's ideal network) step 2 drains
//! [`Node::poll_transmit`] instead, and a transport reports [`Node::handle_frame`],
//! [`Node::handle_sent`] and [`Node::handle_peer_down`].
//!
//! A complete driver: two nodes over an in-memory "data channel", bootstrapped by a
//! manual handshake, then a message from one to the other.
//!
//! ```
//! # #[cfg(not(target_arch = "wasm32"))] { // test sessions come from the simulator
//! use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};
//! use rings_node::api::data_channel_config;
//! use rings_node::node::LinkIo;
//! use rings_node::sim::pair::{session, DAY, T0};
//! use rings_node::{Event, Identity, Instant, Node};
//!
//! let mut rng = ChaCha20Rng::seed_from_u64(1);
//! let mut nodes = [0u8, 1].map(|i| {
//!     let cfg = data_channel_config(7, 8, 5_000, 1 << 20);
//!     Node::new(Identity::Session(session(&mut rng, 7, T0, DAY)), cfg, [i; 32], Instant(T0)).unwrap()
//! });
//! let mut now = Instant(T0);
//! // Node 0 offers by hand; node 1 answers (their texts would be signed `Signal`s).
//! let (offer_conn, negotiation) = nodes[0].manual_offer(now, rings_node::Duration::from_secs(60)).unwrap();
//! let mut conns = [Some(offer_conn), None]; // each side's connection
//! let mut inbox = Vec::new();
//! let mut sent = false;
//! for _ in 0..200 {
//!     // Step 2 for each node: perform its connection work, then take its events.
//!     for side in 0..2 {
//!         while let Some(io) = nodes[side].poll_link() {
//!             match io {
//!                 // A real driver makes an RTCPeerConnection; here its description is text.
//!                 LinkIo::Create { conn, answer_to } => {
//!                     conns[side] = Some(conn);
//!                     nodes[side].handle_local_description(now, conn, format!("sdp of {side}"));
//!                     if side == 0 {
//!                         let did0 = nodes[0].did();
//!                         nodes[1].answer_manual(now, did0, "sdp of 0".into());
//!                     } else if answer_to.is_some() {
//!                         let did1 = nodes[1].did();
//!                         nodes[0].accept_manual_answer(now, negotiation, did1, "sdp of 1".into());
//!                     }
//!                 }
//!                 // The answer is set: the channel opens at both ends.
//!                 LinkIo::SetAnswer { conn, .. } => {
//!                     nodes[0].handle_link_open(now, conn);
//!                     let peer_conn = conns[1].unwrap();
//!                     nodes[1].handle_link_open(now, peer_conn);
//!                 }
//!                 LinkIo::Send { bytes, .. } => {
//!                     let (other, conn) = (1 - side, conns[1 - side].unwrap());
//!                     let _ = nodes[other].handle_link_frame(now, conn, &bytes);
//!                 }
//!                 LinkIo::AddCandidate { .. } | LinkIo::Close { .. } => {}
//!             }
//!         }
//!         while let Some(e) = nodes[side].poll_event() {
//!             if let Event::Message(d) = e {
//!                 inbox.push(d.body);
//!             }
//!         }
//!     }
//!     // An application call, once node 0 has joined the ring through its link.
//!     if !sent && nodes[0].ring().successor() == Some(nodes[1].did()) {
//!         let to = nodes[1].did();
//!         nodes[0].send(now, to, b"hello".to_vec()).unwrap();
//!         sent = true;
//!     }
//!     // Step 3: sleep until the earliest timer (virtual time here), then fire it.
//!     let wake = nodes.iter().filter_map(|n| n.poll_timeout()).min().unwrap();
//!     now = wake.max(now);
//!     nodes.iter_mut().for_each(|n| n.handle_timeout(now));
//! }
//! assert_eq!(inbox, vec![b"hello".to_vec()]);
//! # }
//! ```
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
#[cfg(all(feature = "native", not(target_arch = "wasm32")))]
pub mod native;
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
