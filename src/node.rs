//! The node: one state machine composing the ring ([`chord::Node`]) and the signed,
//! encrypted wire ([`Wire`]).
//!
//! Every driver follows the run-loop contract written once in the crate docs ("The run
//! loop", with a complete example driver).
//!
//! Ring maintenance travels only between direct neighbours, whose identity the transport
//! authenticates (a signed handshake), so it is not signed per message. Messages routed
//! across the ring are signed by their origin and sealed to their destination.

use std::collections::VecDeque;

use crate::chord::{self, Config, ConfigError, DecodeError, Message, RequestId};
use crate::identity::Session;
use crate::link::{LinkConfig, Links};
use crate::store::{self, Engine, OpId, Record, RecordKind, Store, StoreConfig, StoreError, StoreEvent, StoreOutput, STORE_TAG};
use crate::time::{Duration, Instant, WallOffset};
use crate::wire::{self, Delivery, RejectReason, Undelivered, Wire, WireConfig, WireOutput};
use crate::Did;

pub use crate::wire::SendError;

mod delivery;
mod links;

pub use delivery::{ACKED_BODY, ACK_BODY, MAX_UNACKED};
use links::LinkState;
pub use links::{LinkEvent, LinkIo, APP_BODY, LINK_BODY};

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
    pub store: StoreConfig,
    /// Link mode: the node decides which direct links to hold ([`Links`]) and routes
    /// only over open ones; the driver owns just the connections ([`Node::poll_link`]).
    /// `None`: the driver's transport reaches any peer (the simulator's ideal network).
    pub links: Option<LinkConfig>,
    /// Ask the destination of every application message to acknowledge it; one not
    /// acknowledged this long after it was sent (plus 1 ms per 256 bytes) is reported
    /// `Undelivered` with `RouteError::Unacknowledged`. `None`: no acknowledgements
    /// (a message lost with a crashed relay may then go unreported).
    pub delivery_timeout: Option<Duration>,
}

/// What goes over a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkFrame {
    Ring(Message),
    /// An encoded routed frame ([`wire::Frame`]).
    Routed(Vec<u8>),
    /// An encoded store message ([`StoreMsg`](crate::store::StoreMsg)), to a direct peer.
    Store(Vec<u8>),
}

impl LinkFrame {
    pub fn encode(self) -> Vec<u8> {
        match self {
            LinkFrame::Ring(m) => m.encode(),
            LinkFrame::Routed(b) | LinkFrame::Store(b) => b,
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
    /// A `put` or `get` ended.
    Store(StoreEvent),
    /// A direct link came or went (link mode).
    Link(LinkEvent),
    /// The destination acknowledged message `tx` (with `delivery_timeout` set).
    Acknowledged {
        tx: u64,
        dest: Did,
    },
}

/// Why an incoming link frame was refused (it is counted as well).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    Ring(DecodeError),
    Routed(RejectReason),
    Store(StoreError),
}

/// See the module docs.
#[derive(Debug)]
pub struct Node {
    ring: chord::Node,
    wire: Wire,
    /// The store's protocol engine, holding this node's records.
    store: Engine,
    /// Wall clock = `now` + this (validity checks; timers run on `now`).
    wall: WallOffset,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// Link mode's state.
    link: Option<LinkState>,
    /// Link-kind bodies that did not decode, and bodies of no known kind.
    link_errors: u64,
    /// The application's message limit (the wire's, less the kind byte).
    max_body: usize,
    delivery_timeout: Option<Duration>,
    unacked: delivery::Unacked,
}

impl Node {
    /// `seed` keys the node's randomness (32 bytes from a CSPRNG in the browser).
    pub fn new(identity: Identity, cfg: NodeConfig, seed: [u8; 32], now: Instant) -> Result<Node, ConfigError> {
        let (did, session) = match identity {
            Identity::Session(s) => (s.did(), Some(s)),
            Identity::RingOnly(d) => (d, None),
        };
        let mut ring_seed = seed;
        ring_seed[31] ^= 0x5c; // a stream apart from the wire's and the store's
        let ring = chord::Node::with_seed(did, cfg.ring, ring_seed, now)?;
        let mut store_seed = seed;
        store_seed[31] ^= 0x0b; // a stream apart from the wire's
        let store = Engine::new(did, session.clone(), cfg.store.clone(), cfg.wire.network, cfg.wire.skew, store_seed, now);
        // Every body carries its kind in one byte more than the application's limit.
        let mut wire_cfg = cfg.wire.clone();
        wire_cfg.max_message = wire_cfg.max_message.saturating_add(1);
        let mut wire = Wire::new(did, session, wire_cfg, seed);
        let link = cfg.links.clone().map(|lc| {
            wire.require_links();
            let n = u64::from_le_bytes([seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7] ^ 0x11]);
            LinkState::new(Links::new(did, lc, n))
        });
        Ok(Node {
            ring,
            wire,
            store,
            wall: WallOffset::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            link,
            link_errors: 0,
            max_body: cfg.wire.max_message,
            delivery_timeout: cfg.delivery_timeout,
            unacked: delivery::Unacked::default(),
        })
    }

    /// The wall clock reads `wall_ms` (Unix milliseconds) at monotonic `now`: delegation
    /// expiry, message issue times and record expiry and versions follow it, timers do
    /// not (see [`crate::time`]). Drivers whose `now` is wall time need not call it.
    pub fn set_wall_clock(&mut self, now: Instant, wall_ms: u64) {
        let w = WallOffset::between(now, wall_ms);
        self.wall = w;
        self.wire.set_wall_offset(w);
        self.store.set_wall_offset(w);
    }

    /// The wall clock at monotonic `now`.
    pub fn wall_clock(&self, now: Instant) -> Instant {
        self.wall.wall(now)
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
    pub fn store(&self) -> &Store {
        self.store.store()
    }

    // ---- application calls ----

    pub fn join(&mut self, now: Instant, via: Did) -> RequestId {
        let id = self.ring.join(now, via);
        self.pump(now);
        id
    }

    pub fn lookup(&mut self, now: Instant, key: Did) -> RequestId {
        let id = self.ring.lookup(now, key);
        self.pump(now);
        id
    }

    pub fn leave(&mut self, now: Instant) {
        self.ring.leave(now);
        self.pump(now);
    }

    /// Sends `body` to the node `dest`, signed and end-to-end encrypted, in as many
    /// frames as it takes. Returns its transaction id (named by `Event::Undelivered`).
    pub fn send(&mut self, now: Instant, dest: Did, body: Vec<u8>) -> Result<u64, SendError> {
        self.send_from(now, dest, &body)
    }

    /// [`Node::send`] from borrowed bytes (copied once, behind the body's kind byte).
    pub fn send_from(&mut self, now: Instant, dest: Did, data: &[u8]) -> Result<u64, SendError> {
        let len = data.len();
        if len > self.max_body {
            return Err(SendError::TooLarge { len, max: self.max_body });
        }
        let acked = self.delivery_timeout.filter(|_| dest != self.did());
        if acked.is_some() && self.unacked.is_full() {
            return Err(SendError::QueueFull);
        }
        let mut body = Vec::with_capacity(len + 1);
        body.push(if acked.is_some() { ACKED_BODY } else { APP_BODY });
        body.extend_from_slice(data);
        let r = self.wire.send(now, self.ring.table(), dest, body);
        if let (Ok(tx), Some(timeout)) = (&r, acked) {
            self.unacked.track(now, timeout, dest, *tx, len);
        }
        self.pump(now);
        r
    }

    // ---- the store ----

    /// Writes `value` at `key` (see [`Record::key_of`]) as this node's account, for
    /// `ttl`; ends with [`StoreEvent::Put`]. Refused at once if this node has no session
    /// or the value is over the limit.
    pub fn put(&mut self, now: Instant, key: Did, kind: RecordKind, value: Vec<u8>, ttl: Duration) -> Result<OpId, StoreError> {
        let r = self.with_store(|s, cx| s.put(now, cx, key, kind, value, ttl));
        self.pump(now);
        r
    }

    /// Like [`Node::put`], and keeps the record alive: it is written again (a new
    /// version) every third of its lifetime until [`Node::unpublish`].
    pub fn publish(&mut self, now: Instant, key: Did, kind: RecordKind, value: Vec<u8>, ttl: Duration) -> Result<OpId, StoreError> {
        let r = self.with_store(|s, cx| s.publish(now, cx, key, kind, value, ttl));
        self.pump(now);
        r
    }

    /// Stops renewing a published record (it expires where it is stored).
    pub fn unpublish(&mut self, key: Did, kind: RecordKind) {
        self.store.unpublish(key, kind);
    }

    /// Stores a record signed elsewhere (a client's); ends with [`StoreEvent::Put`].
    pub fn put_record(&mut self, now: Instant, record: Record) -> OpId {
        let op = self.with_store(|s, cx| s.put_record(now, cx, record));
        self.pump(now);
        op
    }

    /// A driver with a disk: from now on the store notes every slot that changes.
    pub fn keep_store_journal(&mut self) {
        self.store.keep_journal();
    }

    /// The slots changed since the last call (what they hold now: `store().held_at`).
    /// A driver writes them to disk before it sends anything this node said since.
    pub fn take_store_changes(&mut self) -> Vec<(Did, Did)> {
        self.store.take_changes()
    }

    /// Takes back a record held before a restart (checked; refused ones are counted).
    pub fn restore_record(&mut self, now: Instant, record: Record) -> Result<bool, StoreError> {
        self.with_store(|s, cx| s.restore(now, cx, record))
    }

    /// Reads the records at `key` from its owner (or, if the owner holds none, its
    /// replicas); ends with [`StoreEvent::Get`].
    pub fn get(&mut self, now: Instant, key: Did) -> OpId {
        let op = self.with_store(|s, cx| s.get(now, cx, key));
        self.pump(now);
        op
    }

    /// Runs `f` on the store with the ring's view and the shared verified delegations.
    fn with_store<R>(&mut self, f: impl FnOnce(&mut Engine, &mut store::Context<'_>) -> R) -> R {
        let mut cx = store::Context { table: self.ring.table(), joined: self.ring.is_joined(), vouched: self.wire.vouched_mut() };
        f(&mut self.store, &mut cx)
    }

    // ---- inputs ----

    /// A frame arrived from the link peer `from`. A bad frame is counted and its reason
    /// returned; nothing else happens.
    pub fn handle_frame(&mut self, now: Instant, from: Did, bytes: &[u8]) -> Result<(), FrameError> {
        let r = if bytes.first() == Some(&wire::ROUTED_TAG) {
            self.wire.handle_frame(now, self.ring.table(), from, bytes).map_err(FrameError::Routed)
        } else if bytes.first() == Some(&STORE_TAG) {
            self.with_store(|s, cx| s.handle_frame(now, cx, from, bytes)).map_err(FrameError::Store)
        } else {
            self.ring.handle_frame(now, from, bytes).map_err(FrameError::Ring)
        };
        self.pump(now);
        r
    }

    /// A decoded ring message from `from` (the simulator skips the codec).
    pub fn handle_ring_message(&mut self, now: Instant, from: Did, msg: Message) {
        self.ring.handle_message(now, from, msg);
        self.pump(now);
    }

    /// The transport has sent `bytes` of routed frames toward `peer`.
    pub fn handle_sent(&mut self, now: Instant, peer: Did, bytes: usize) {
        self.wire.handle_sent(now, self.ring.table(), peer, bytes);
        self.pump(now);
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
        self.pump(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.ring.handle_timeout(now);
        self.wire.handle_timeout(now, self.ring.table());
        if let Some(l) = self.link.as_mut() {
            l.links.handle_timeout(now);
        }
        self.with_store(|s, cx| s.handle_timeout(now, cx));
        self.expire_unacked(now);
        self.pump(now);
    }

    // ---- outputs ----

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let links = self.link.as_ref().and_then(|l| l.links.poll_timeout());
        [self.ring.poll_timeout(), self.wire.poll_timeout(), self.store.poll_timeout(), links, self.unacked.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Bodies of no known kind, and link messages that did not decode.
    pub fn body_errors(&self) -> u64 {
        self.link_errors
    }

    /// Moves every part's outputs into the node's queues, in order, until none has more;
    /// the store's lookups go to the ring and their answers straight back to the store.
    fn pump(&mut self, now: Instant) {
        loop {
            self.pump_parts(now);
            self.transmits_to_links(now);
            if !self.pump_links(now) {
                break;
            }
        }
    }

    fn pump_parts(&mut self, now: Instant) {
        loop {
            while let Some(t) = self.ring.poll_transmit() {
                self.transmits.push_back(Transmit { to: t.to, frame: LinkFrame::Ring(t.message) });
            }
            if let Some(a) = self.ring.poll_lookup_answer() {
                self.with_store(|s, cx| s.handle_lookup(now, cx, a.tag, a.key, a.result));
                continue;
            }
            if let Some(o) = self.store.poll_output() {
                match o {
                    StoreOutput::Send { to, bytes } => self.transmits.push_back(Transmit { to, frame: LinkFrame::Store(bytes) }),
                    StoreOutput::Lookup { tag, key } => self.ring.lookup_for(now, key, tag),
                    StoreOutput::Event(e) => self.events.push_back(Event::Store(e)),
                }
                continue;
            }
            let Some(e) = self.ring.poll_event() else { break };
            if let Some(l) = self.link.as_mut() {
                match e {
                    chord::Event::PeerUnreachable { peer } => l.links.handle_unreachable(now, peer),
                    chord::Event::Joined { .. } => l.bootstrap = None,
                    // Every attempt of this join through the bootstrap peer failed and the
                    // peer fell silent: give its link up (the driver bootstraps elsewhere)
                    // rather than retry through it for ever. A peer still heard from is
                    // retried, as the ring does (the fault may lie beyond it).
                    chord::Event::JoinFailed { id, .. } => {
                        if let Some((via, _)) = l.bootstrap.filter(|b| b.1 == id) {
                            if l.links.give_up_join(now, via) {
                                l.bootstrap = None;
                                self.ring.stop_joining();
                            }
                        }
                    }
                    _ => {}
                }
            }
            if let chord::Event::PredecessorChanged { .. } | chord::Event::SuccessorChanged { .. } = e {
                self.store.handle_ring_change(now, matches!(e, chord::Event::PredecessorChanged { .. }));
            }
            self.events.push_back(Event::Ring(e));
        }
        while let Some(o) = self.wire.poll_output() {
            match o {
                WireOutput::Transmit { to, frame } => self.transmits.push_back(Transmit { to, frame: LinkFrame::Routed(frame) }),
                WireOutput::Delivered(mut d) => match d.body.first().copied() {
                    Some(kind @ (APP_BODY | ACKED_BODY)) => {
                        d.body.remove(0);
                        if kind == ACKED_BODY {
                            self.acknowledge(now, d.from, d.tx);
                        }
                        self.events.push_back(Event::Message(d));
                    }
                    Some(ACK_BODY) => self.on_ack(d.from, &d.body[1..]),
                    Some(LINK_BODY) => self.on_link_body(now, d.from, &d.body[1..]),
                    _ => self.link_errors += 1,
                },
                WireOutput::Undelivered(u) => {
                    if !self.link_undelivered(u.tx, u.dest) && self.settle_reported(&u) {
                        self.events.push_back(Event::Undelivered(u));
                    }
                }
            }
        }
    }
}
