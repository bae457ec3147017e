//! The node: one state machine composing the ring ([`chord::Node`]) and the signed,
//! encrypted wire ([`Wire`]).
//!
//! Run-loop contract (both drivers follow it): feed every input with the current time —
//! a frame from a peer ([`Node::handle_frame`]), a transport event
//! ([`Node::handle_sent`], [`Node::handle_peer_down`]), a timer ([`Node::handle_timeout`]),
//! an application call ([`Node::join`], [`Node::lookup`], [`Node::send`] …) — then drain
//! [`Node::poll_transmit`] and [`Node::poll_event`] until they return `None`, and wake the
//! node at [`Node::poll_timeout`].
//!
//! Ring maintenance travels only between direct neighbours, whose identity the transport
//! authenticates (a signed handshake), so it is not signed per message. Messages routed
//! across the ring are signed by their origin and sealed to their destination.

use std::collections::VecDeque;

use crate::chord::{self, Config, ConfigError, DecodeError, Message, RequestId};
use crate::identity::Session;
use crate::time::Instant;
use crate::wire::{self, Delivery, RejectReason, Undelivered, Wire, WireConfig, WireOutput};
use crate::Did;

pub use crate::wire::SendError;

/// Who a node is.
#[derive(Clone, Debug)]
pub enum Identity {
    /// A session vouched for by an account: the node can send and receive messages.
    Session(Session),
    /// A ring member with no session: it routes lookups and relays frames but cannot
    /// send or receive messages. For large simulations where per-node keys are not the
    /// subject; never the browser's choice.
    RingOnly(Did),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeConfig {
    pub ring: Config,
    pub wire: WireConfig,
}

/// What goes over a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkFrame {
    Ring(Message),
    /// An encoded routed frame ([`wire::Frame`]).
    Routed(Vec<u8>),
}

impl LinkFrame {
    pub fn encode(self) -> Vec<u8> {
        match self {
            LinkFrame::Ring(m) => m.encode(),
            LinkFrame::Routed(b) => b,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: Did,
    pub frame: LinkFrame,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Ring(chord::Event),
    /// A message arrived, verified and decrypted.
    Message(Delivery),
    /// A message this node sent did not arrive.
    Undelivered(Undelivered),
}

/// Why an incoming link frame was refused (it is counted as well).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    Ring(DecodeError),
    Routed(RejectReason),
}

/// See the module docs.
#[derive(Debug)]
pub struct Node {
    ring: chord::Node,
    wire: Wire,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl Node {
    /// `seed` keys the node's randomness (32 bytes from a CSPRNG in the browser).
    pub fn new(identity: Identity, cfg: NodeConfig, seed: [u8; 32], now: Instant) -> Result<Node, ConfigError> {
        let (did, session) = match identity {
            Identity::Session(s) => (s.did(), Some(s)),
            Identity::RingOnly(d) => (d, None),
        };
        let ring_seed = u64::from_le_bytes([seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7]]);
        let ring = chord::Node::new(did, cfg.ring, ring_seed, now)?;
        Ok(Node { ring, wire: Wire::new(did, session, cfg.wire, seed), transmits: VecDeque::new(), events: VecDeque::new() })
    }

    // ---- getters ----

    pub fn did(&self) -> Did {
        self.ring.did()
    }
    pub fn ring(&self) -> &chord::Node {
        &self.ring
    }
    pub fn wire(&self) -> &Wire {
        &self.wire
    }

    // ---- application calls ----

    pub fn join(&mut self, now: Instant, via: Did) -> RequestId {
        let id = self.ring.join(now, via);
        self.pump();
        id
    }

    pub fn lookup(&mut self, now: Instant, key: Did) -> RequestId {
        let id = self.ring.lookup(now, key);
        self.pump();
        id
    }

    pub fn leave(&mut self, now: Instant) {
        self.ring.leave(now);
        self.pump();
    }

    /// Sends `body` to the node `dest`, signed and end-to-end encrypted, in as many
    /// frames as it takes. Returns its transaction id (named by `Event::Undelivered`).
    pub fn send(&mut self, now: Instant, dest: Did, body: Vec<u8>) -> Result<u64, SendError> {
        let r = self.wire.send(now, self.ring.table(), dest, body);
        self.pump();
        r
    }

    // ---- inputs ----

    /// A frame arrived from the link peer `from`. A bad frame is counted and its reason
    /// returned; nothing else happens.
    pub fn handle_frame(&mut self, now: Instant, from: Did, bytes: &[u8]) -> Result<(), FrameError> {
        let r = if bytes.first() == Some(&wire::ROUTED_TAG) {
            self.wire.handle_frame(now, self.ring.table(), from, bytes).map_err(FrameError::Routed)
        } else {
            self.ring.handle_frame(now, from, bytes).map_err(FrameError::Ring)
        };
        self.pump();
        r
    }

    /// A decoded ring message from `from` (the simulator skips the codec).
    pub fn handle_ring_message(&mut self, now: Instant, from: Did, msg: Message) {
        self.ring.handle_message(now, from, msg);
        self.pump();
    }

    /// The transport has sent `bytes` of routed frames toward `peer`.
    pub fn handle_sent(&mut self, now: Instant, peer: Did, bytes: usize) {
        self.wire.handle_sent(now, self.ring.table(), peer, bytes);
        self.pump();
    }

    /// Route messages only over links the driver reports open ([`Node::handle_peer_up`]);
    /// the browser calls this once at start, the simulator never.
    pub fn require_links(&mut self) {
        self.wire.require_links();
    }

    /// The transport opened a link to `peer`.
    pub fn handle_peer_up(&mut self, peer: Did) {
        self.wire.link_up(peer);
    }

    pub fn handle_peer_down(&mut self, now: Instant, peer: Did) {
        self.ring.handle_peer_down(now, peer);
        self.wire.handle_peer_down(now, self.ring.table(), peer);
        self.pump();
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.ring.handle_timeout(now);
        self.wire.handle_timeout(now, self.ring.table());
        self.pump();
    }

    // ---- outputs ----

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.ring.poll_timeout(), self.wire.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves both parts' outputs into the node's queues, in order.
    fn pump(&mut self) {
        while let Some(t) = self.ring.poll_transmit() {
            self.transmits.push_back(Transmit { to: t.to, frame: LinkFrame::Ring(t.message) });
        }
        while let Some(e) = self.ring.poll_event() {
            self.events.push_back(Event::Ring(e));
        }
        while let Some(o) = self.wire.poll_output() {
            match o {
                WireOutput::Transmit { to, frame } => self.transmits.push_back(Transmit { to, frame: LinkFrame::Routed(frame) }),
                WireOutput::Delivered(d) => self.events.push_back(Event::Message(d)),
                WireOutput::Undelivered(u) => self.events.push_back(Event::Undelivered(u)),
            }
        }
    }
}
