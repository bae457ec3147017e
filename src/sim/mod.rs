//! A deterministic network emulator: many core nodes in one process, virtual time,
//! per-link latency, message loss, crashes and graceful leaves. No sleeps, no threads,
//! no wall clock: the same seed replays the same run bit for bit.
//!
//! The simulator is the second driver of [`Node`] (the browser is the first): after
//! every input it drains the node's transmits into its event queue with the link's
//! latency, records the node's events, and schedules its next wake-up.

mod calendar;
mod checks;
mod liars;
mod links;
mod oracle;
pub mod pair;
pub mod scenario;
mod store_view;

use std::collections::HashMap;

use calendar::Calendar;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::chord::{self, Config, ConfigError, LookupError, Message, RequestId};
use crate::identity::{AccountKind, LocalAccount, Session};
use crate::node::{Event, Identity, LinkFrame, Node, NodeConfig};
use crate::rng::SeededRng;
use crate::time::{Duration, Instant};
use crate::wire::{Delivery, SendError, Undelivered, WireConfig};
use crate::Did;

pub use links::{LinkModel, LinkStats};
pub use oracle::Oracle;

/// Index of a node in the simulator.
pub type NodeIx = u32;

/// Network and node parameters of a simulation.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub node: Config,
    /// One-way latency of a link is fixed per pair, uniform in this range.
    pub min_latency: Duration,
    pub max_latency: Duration,
    /// Probability, in parts per million, that a message is lost.
    pub loss_ppm: u32,
    /// Encode and decode every message through the binary codec (slower, checks it).
    pub wire: bool,
    /// The wire's limits (network id, message size, timeouts).
    pub wire_config: WireConfig,
    /// Give every node a real account and session (secp256k1 keys, EIP-191 delegation),
    /// so it can send and receive signed, encrypted messages. Without it nodes are
    /// ring-only: cheap, for large rings where messages are not the subject.
    pub identities: bool,
    /// Link bandwidth for routed frames, in bytes per millisecond (0: unlimited).
    pub bandwidth: u64,
    /// The DHT store's limits and timings.
    pub store: crate::store::StoreConfig,
    /// Link mode: every node holds only the links its link manager opens, modelled as
    /// WebRTC connections (needs `identities`: offers travel as signed messages).
    /// `None`: any node reaches any other directly.
    pub links: Option<LinkModel>,
    /// Every node asks for delivery acknowledgements ([`NodeConfig::delivery_timeout`]).
    pub delivery_timeout: Option<Duration>,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            seed: 1,
            node: Config::default(),
            min_latency: Duration::from_millis(5),
            max_latency: Duration::from_millis(50),
            loss_ppm: 0,
            wire: false,
            wire_config: WireConfig::default(),
            identities: false,
            bandwidth: 12_500, // 100 Mbit/s
            store: crate::store::StoreConfig::default(),
            links: None,
            delivery_timeout: None,
        }
    }
}

/// How a request ended, as seen by the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `correct`: `owner` was the true successor of the key (by the oracle) at the
    /// instant it answered.
    Found {
        owner: Did,
        hops: u8,
        correct: bool,
    },
    Joined {
        successor: Did,
    },
    Failed(LookupError),
}

/// Network-level counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    /// Messages addressed to a crashed, departed or unknown node.
    pub to_dead: u64,
    /// Messages addressed to a DID that only a liar named (see [`Sim::liar_noise`]).
    pub to_ghost: u64,
    pub decode_errors: u64,
    pub events: u64,
}

enum Payload {
    Msg(Message),
    Frame(Vec<u8>),
}

enum What {
    Deliver {
        to: NodeIx,
        from: Did,
        payload: Payload,
    },
    Wake {
        node: NodeIx,
    },
    /// A link-mode connection did something.
    Link(links::LinkWhat),
    /// The link from `node` to `peer` finished sending `bytes` of routed frames.
    Sent {
        node: NodeIx,
        peer: Did,
        bytes: usize,
    },
}

struct Slot {
    node: Node,
    alive: bool,
    joined: bool,
    wake: Option<Instant>,
    /// How far this node's clock runs ahead of the simulator's (behind if negative),
    /// in milliseconds: everything it is given and gives back is on its own clock.
    clock: i64,
}

impl Slot {
    /// Live and joined.
    fn is_member(&self) -> bool {
        self.alive && self.joined
    }
}

/// The emulator. See the module docs.
pub struct Sim {
    cfg: SimConfig,
    now: Instant,
    rng: SeededRng,
    slots: Vec<Slot>,
    index: HashMap<Did, NodeIx>,
    oracle: Oracle,
    queue: Calendar<What>,
    outcomes: HashMap<(NodeIx, RequestId), Outcome>,
    /// Keys of lookups started through [`Sim::lookup`] and not finished, with how many;
    /// and for each, the verdicts on the answers given so far (`(owner, right)`), judged
    /// by the oracle at the instant the owner gave them.
    pending_keys: HashMap<Did, (u32, Vec<(Did, bool)>)>,
    /// Liars: nodes whose stabilization answers and pings lie (see [`Sim::make_liar`]).
    liars: Vec<bool>,
    /// DIDs that no node has, named by liars; a transmit to one is counted.
    ghosts: std::collections::HashSet<Did>,
    /// Pairs of nodes between which every message is lost until the instant given.
    cuts: Vec<(Did, Did, Instant)>,
    /// When each directed link finishes sending what it was given, in microseconds.
    link_free: HashMap<(NodeIx, Did), u64>,
    inbox: HashMap<NodeIx, Vec<Delivery>>,
    undelivered: Vec<(NodeIx, Undelivered)>,
    store_events: HashMap<(NodeIx, crate::store::OpId), crate::store::StoreEvent>,
    stats: SimStats,
    links: links::LinkNet,
}

impl Sim {
    pub fn new(mut cfg: SimConfig) -> Result<Sim, ConfigError> {
        // Link-mode nodes run the ring with the hop timeout data-channel drivers use.
        if let Some(m) = &cfg.links {
            cfg.node.hop_timeout = m.ring_hop_timeout;
        }
        cfg.node.validate()?;
        Ok(Sim {
            rng: SeededRng::new(cfg.seed),
            now: Instant(0),
            slots: Vec::new(),
            index: HashMap::new(),
            oracle: Oracle::default(),
            queue: Calendar::default(),
            outcomes: HashMap::new(),
            pending_keys: HashMap::new(),
            cuts: Vec::new(),
            liars: Vec::new(),
            ghosts: std::collections::HashSet::new(),
            link_free: HashMap::new(),
            inbox: HashMap::new(),
            undelivered: Vec::new(),
            store_events: HashMap::new(),
            stats: SimStats::default(),
            links: links::LinkNet::new(cfg.links.clone()),
            cfg,
        })
    }

    // ---- getters ----

    pub fn now(&self) -> Instant {
        self.now
    }
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }
    pub fn oracle(&self) -> &Oracle {
        &self.oracle
    }
    /// Every message between `a` and `b`, both ways, is lost until `until` (in link mode:
    /// every frame on their links, which stay open).
    pub fn cut(&mut self, a: Did, b: Did, until: Instant) {
        self.cuts.push((a, b, until));
    }

    /// Changes the share of messages lost from now on (parts per million).
    pub fn set_loss_ppm(&mut self, ppm: u32) {
        self.cfg.loss_ppm = ppm;
    }
    pub fn rng(&mut self) -> &mut SeededRng {
        &mut self.rng
    }
    pub fn node(&self, ix: NodeIx) -> &Node {
        &self.slots[ix as usize].node
    }
    pub fn is_alive(&self, ix: NodeIx) -> bool {
        self.slots[ix as usize].alive
    }
    pub fn len(&self) -> usize {
        self.slots.len()
    }
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
    /// Long enough for any request to be answered or time out.
    pub fn answer_limit(&self) -> Duration {
        Duration(self.cfg.node.request_timeout.as_millis() + 100)
    }
    /// Long enough for a join to finish or fail through all its attempts and backoffs.
    pub fn join_limit(&self) -> Duration {
        let c = &self.cfg.node;
        let attempt = c.request_timeout.as_millis() / 2 + c.hop_timeout.as_millis() * c.strikes as u64;
        let backoff: u64 = (0..c.join_attempts as u64).map(|a| c.join_backoff.as_millis() << a.min(3)).sum();
        Duration(attempt * c.join_attempts as u64 + backoff + 100)
    }
    pub fn round_length(&self) -> Duration {
        self.cfg.node.stabilize_interval
    }
    /// Live nodes that have joined the ring, by index: the oracle's members. A node
    /// enters the oracle when it reports `Joined` and leaves it when it crashes or leaves;
    /// from that instant it is expected to own its keys and to appear in its neighbours'
    /// pointers.
    pub fn members(&self) -> Vec<NodeIx> {
        (0..self.slots.len() as NodeIx).filter(|&i| self.slots[i as usize].is_member()).collect()
    }
    /// A uniformly random member.
    pub fn random_member(&mut self) -> Option<NodeIx> {
        let did = self.oracle.nth(self.rng.below(self.oracle.len() as u64) as usize)?;
        self.index.get(&did).copied()
    }
    pub fn outcome(&self, node: NodeIx, id: RequestId) -> Option<Outcome> {
        self.outcomes.get(&(node, id)).copied()
    }
    pub fn take_outcome(&mut self, node: NodeIx, id: RequestId) -> Option<Outcome> {
        self.outcomes.remove(&(node, id))
    }

    // ---- membership ----

    /// Adds a node with a random DID. The first node forms the ring alone; later ones
    /// join through `via` (a member) and enter the oracle when they report `Joined`.
    pub fn spawn(&mut self, via: Option<NodeIx>) -> (NodeIx, Option<RequestId>) {
        loop {
            let identity = if self.cfg.identities {
                let mut keys = ChaCha20Rng::seed_from_u64(self.rng.next_u64());
                let account = LocalAccount::generate(&mut keys);
                let w = &self.cfg.wire_config;
                Identity::Session(Session::with_local_account(&mut keys, &account, AccountKind::Eip191, w.network, self.now, w.session_ttl))
            } else {
                Identity::RingOnly(self.rng.did())
            };
            let did = match &identity {
                Identity::Session(s) => s.did(),
                Identity::RingOnly(d) => *d,
            };
            if !self.index.contains_key(&did) {
                return self.spawn_identity(identity, via, 0);
            }
        }
    }

    /// Adds a node running `session` (a second device of an account, say) whose clock
    /// runs `clock` ms ahead of the simulator's, behind if negative (see [`Sim::spawn`]).
    pub fn spawn_session(&mut self, session: Session, via: Option<NodeIx>, clock: i64) -> (NodeIx, Option<RequestId>) {
        self.spawn_identity(Identity::Session(session), via, clock)
    }

    /// Adds a ring-only node with a chosen DID (see [`Sim::spawn`]).
    pub fn spawn_with(&mut self, did: Did, via: Option<NodeIx>) -> (NodeIx, Option<RequestId>) {
        self.spawn_identity(Identity::RingOnly(did), via, 0)
    }

    fn spawn_identity(&mut self, identity: Identity, via: Option<NodeIx>, clock: i64) -> (NodeIx, Option<RequestId>) {
        // One draw per node (as before the wire existed, so seeded runs stay comparable),
        // stretched to the node's 32-byte seed.
        let draw = self.rng.next_u64();
        let mut stretch = SeededRng::new(draw);
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&draw.to_le_bytes());
        for c in seed[8..].chunks_mut(8) {
            c.copy_from_slice(&stretch.next_u64().to_le_bytes());
        }
        let links = self.links.model().map(|m| m.config.clone());
        let cfg = NodeConfig {
            ring: self.cfg.node.clone(),
            wire: self.cfg.wire_config.clone(),
            store: self.cfg.store.clone(),
            links,
            delivery_timeout: self.cfg.delivery_timeout,
        };
        // The configuration was validated in `Sim::new`.
        let now = Instant(self.now.as_millis().saturating_add_signed(clock));
        let node = Node::new(identity, cfg, seed, now).expect("validated config");
        let did = node.did();
        let ix = self.slots.len() as NodeIx;
        self.slots.push(Slot { node, alive: true, joined: false, wake: None, clock });
        self.liars.push(false);
        self.index.insert(did, ix);
        let req = match via {
            None => {
                self.slots[ix as usize].joined = true;
                self.oracle.insert(did);
                None
            }
            Some(v) if self.links.model().is_some() => {
                // Joins once the bootstrap link is open.
                self.bootstrap(ix, v);
                None
            }
            Some(v) => {
                let via_did = self.slots[v as usize].node.did();
                Some(self.slots[ix as usize].node.join(now, via_did))
            }
        };
        self.after_input(ix);
        (ix, req)
    }

    /// What node `ix`'s clock says now.
    pub fn clock_of(&self, ix: NodeIx) -> Instant {
        Instant(self.now.as_millis().saturating_add_signed(self.slots[ix as usize].clock))
    }

    /// The node stops at once, without a word (process killed, tab closed).
    pub fn crash(&mut self, ix: NodeIx) {
        let slot = &mut self.slots[ix as usize];
        if slot.alive {
            slot.alive = false;
            self.oracle.remove(slot.node.did());
            self.links_gone(ix, true);
        }
    }

    /// The node hands over to its neighbours, then stops.
    pub fn leave(&mut self, ix: NodeIx) {
        if !self.slots[ix as usize].alive {
            return;
        }
        self.oracle.remove(self.slots[ix as usize].node.did());
        let now = self.clock_of(ix);
        self.slots[ix as usize].node.leave(now);
        self.after_input(ix);
        self.slots[ix as usize].alive = false;
        self.links_gone(ix, false);
    }

    /// Delivers a raw frame to `to` now, as if `from` had sent it (bad-input tests).
    pub fn inject_frame(&mut self, to: NodeIx, from: Did, frame: Vec<u8>) {
        self.dispatch(What::Deliver { to, from, payload: Payload::Frame(frame) });
    }

    /// Delivers a message to `to` now, as if `from` had sent it (bad-input tests).
    pub fn inject_message(&mut self, to: NodeIx, from: Did, msg: Message) {
        self.dispatch(What::Deliver { to, from, payload: Payload::Msg(msg) });
    }

    /// Starts a lookup of `key` at node `ix`; its outcome is recorded under the id.
    pub fn lookup(&mut self, ix: NodeIx, key: Did) -> RequestId {
        let now = self.clock_of(ix);
        let id = self.slots[ix as usize].node.lookup(now, key);
        self.pending_keys.entry(key).or_default().0 += 1;
        self.after_input(ix);
        id
    }

    // ---- time ----

    /// Processes every event up to and including `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: Instant) {
        while let Some((at, items)) = self.queue.pop_due(t) {
            self.now = at;
            let mut items = items;
            for what in items.drain(..) {
                self.dispatch(what);
            }
            self.queue.recycle(items);
        }
        self.now = self.now.max(t);
    }

    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs whole stabilization rounds.
    pub fn run_rounds(&mut self, rounds: u64) {
        self.run_for(Duration(self.round_length().as_millis() * rounds));
    }

    fn dispatch(&mut self, what: What) {
        match what {
            What::Deliver { to, from, payload } => {
                let now = self.clock_of(to);
                let slot = &mut self.slots[to as usize];
                if !slot.alive {
                    self.stats.to_dead += 1;
                    return;
                }
                self.stats.delivered += 1;
                match payload {
                    Payload::Msg(m) => slot.node.handle_ring_message(now, from, m),
                    Payload::Frame(f) => {
                        // Routed frames that fail are counted by the node's wire stats.
                        if let Err(crate::node::FrameError::Ring(_)) = slot.node.handle_frame(now, from, &f) {
                            self.stats.decode_errors += 1;
                        }
                    }
                }
                self.after_input(to);
            }
            What::Wake { node } => {
                let now = self.clock_of(node);
                let slot = &mut self.slots[node as usize];
                if !slot.alive || slot.wake.is_none_or(|w| w > self.now) {
                    return; // superseded by an earlier wake-up
                }
                slot.wake = None;
                slot.node.handle_timeout(now);
                self.after_input(node);
            }
            What::Link(w) => self.dispatch_link(w),
            What::Sent { node, peer, bytes } => {
                if self.slots[node as usize].alive {
                    let now = self.clock_of(node);
                    self.slots[node as usize].node.handle_sent(now, peer, bytes);
                    self.after_input(node);
                }
            }
        }
    }

    fn schedule(&mut self, at: Instant, what: What) {
        self.queue.push(at, what);
    }

    fn latency(&self, a: Did, b: Did) -> Duration {
        let (lo, hi) = (self.cfg.min_latency.as_millis(), self.cfg.max_latency.as_millis());
        let mut h = SeededRng::new(a.low_u64() ^ b.low_u64() ^ self.cfg.seed);
        Duration(lo + h.below(hi.saturating_sub(lo) + 1))
    }

    /// Whether a cut (see [`Sim::cut`]) separates `from` and `to` now.
    fn is_cut(&mut self, from: Did, to: Did) -> bool {
        if self.cuts.is_empty() {
            return false;
        }
        let now = self.now;
        self.cuts.retain(|c| c.2 > now);
        self.cuts.iter().any(|&(a, b, _)| (a, b) == (from, to) || (b, a) == (from, to))
    }

    /// Drains a node's outputs after an input.
    fn after_input(&mut self, ix: NodeIx) {
        self.drain_links(ix);
        let from = self.slots[ix as usize].node.did();
        while let Some(tx) = self.slots[ix as usize].node.poll_transmit() {
            self.stats.sent += 1;
            if !self.ghosts.is_empty() && self.ghosts.contains(&tx.to) {
                self.stats.to_ghost += 1;
            }
            if self.is_cut(from, tx.to) || (self.cfg.loss_ppm > 0 && self.rng.chance_ppm(self.cfg.loss_ppm)) {
                self.stats.lost += 1;
                continue;
            }
            let mut start = self.now;
            if let LinkFrame::Routed(bytes) = &tx.frame {
                // Routed frames occupy their link for their size over its bandwidth; the
                // sender hears when the link has taken them (its flow-control credit).
                let len = bytes.len();
                if self.cfg.bandwidth > 0 {
                    // Kept in microseconds so that many small frames add up exactly.
                    let now_us = self.now.as_millis() * 1000;
                    let free = self.link_free.entry((ix, tx.to)).or_insert(now_us);
                    let done = (*free).max(now_us) + (len as u64 * 1000).div_ceil(self.cfg.bandwidth);
                    *free = done;
                    start = Instant(done.div_ceil(1000));
                }
                self.schedule(start, What::Sent { node: ix, peer: tx.to, bytes: len });
            }
            let Some(&to) = self.index.get(&tx.to) else {
                self.stats.to_dead += 1;
                continue;
            };
            let payload = match tx.frame {
                LinkFrame::Ring(mut message) => {
                    if let Message::Found { key, owner, .. } = message {
                        // Judge an answer when its owner gives it: it claims to own `key` now.
                        if owner == from && !self.pending_keys.is_empty() {
                            if let Some((_, verdicts)) = self.pending_keys.get_mut(&key) {
                                let right = self.oracle.successor_of(key) == Some(from);
                                verdicts.retain(|v| v.0 != from);
                                verdicts.push((from, right));
                            }
                        }
                    }
                    if self.liars[ix as usize] {
                        message = self.lie(message);
                    }
                    if self.cfg.wire {
                        Payload::Frame(message.encode())
                    } else {
                        Payload::Msg(message)
                    }
                }
                LinkFrame::Routed(bytes) | LinkFrame::Store(bytes) => Payload::Frame(bytes),
            };
            let at = start + self.latency(from, tx.to);
            self.schedule(at, What::Deliver { to, from, payload });
        }
        while let Some(ev) = self.slots[ix as usize].node.poll_event() {
            self.stats.events += 1;
            self.record(ix, ev);
        }
        // Keep an earlier wake-up if one is scheduled: waking early is harmless (the
        // node reschedules), and it spares the queue one entry per input.
        let slot = &self.slots[ix as usize];
        // The node's deadline is on its own clock.
        let next =
            if slot.alive { slot.node.poll_timeout().map(|t| Instant(t.as_millis().saturating_add_signed(-slot.clock))) } else { None };
        if let Some(t) = next.map(|t| t.max(self.now)) {
            if slot.wake.is_none_or(|w| t < w) {
                self.slots[ix as usize].wake = Some(t);
                self.schedule(t, What::Wake { node: ix });
            }
        }
    }

    fn record(&mut self, ix: NodeIx, ev: Event) {
        let ev = match ev {
            Event::Ring(e) => e,
            Event::Message(d) => return self.inbox.entry(ix).or_default().push(d),
            Event::Undelivered(u) => return self.undelivered.push((ix, u)),
            Event::Link(_) | Event::Acknowledged { .. } => return,
            Event::Store(e) => {
                let op = match &e {
                    crate::store::StoreEvent::Put { op, .. } | crate::store::StoreEvent::Get { op, .. } => *op,
                };
                self.store_events.insert((ix, op), e);
                return;
            }
        };
        use chord::Event as E;
        match ev {
            E::LookupDone { id, key, owner, hops } => {
                let verdict = match self.pending_keys.get_mut(&key) {
                    Some((count, verdicts)) => {
                        let v = verdicts.iter().find(|v| v.0 == owner).map(|v| v.1);
                        *count = count.saturating_sub(1);
                        if *count == 0 {
                            self.pending_keys.remove(&key);
                        }
                        v
                    }
                    None => None,
                };
                // answered locally, or by a relay's word only: judged now
                let correct = verdict.unwrap_or_else(|| self.oracle.successor_of(key) == Some(owner));
                self.outcomes.insert((ix, id), Outcome::Found { owner, hops, correct });
            }
            E::LookupFailed { id, key, error } => {
                if let Some((count, _)) = self.pending_keys.get_mut(&key) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        self.pending_keys.remove(&key);
                    }
                }
                self.outcomes.insert((ix, id), Outcome::Failed(error));
            }
            E::JoinFailed { id, error } => {
                self.outcomes.insert((ix, id), Outcome::Failed(error));
            }
            E::Joined { id, successor } => {
                // From now on the node owns its keys: the oracle admits it.
                let slot = &mut self.slots[ix as usize];
                slot.joined = slot.alive;
                if slot.alive {
                    let did = slot.node.did();
                    self.oracle.insert(did);
                }
                self.outcomes.insert((ix, id), Outcome::Joined { successor });
            }
            _ => {}
        }
    }

    // ---- messages ----

    /// Node `ix` sends `body` to the node `dest` (needs `SimConfig::identities`).
    pub fn send(&mut self, ix: NodeIx, dest: Did, body: Vec<u8>) -> Result<u64, SendError> {
        let now = self.clock_of(ix);
        let r = self.slots[ix as usize].node.send(now, dest, body);
        self.after_input(ix);
        r
    }

    /// Messages delivered to `ix` so far (taken out).
    pub fn take_inbox(&mut self, ix: NodeIx) -> Vec<Delivery> {
        self.inbox.remove(&ix).unwrap_or_default()
    }

    /// Failures reported to senders so far (taken out).
    pub fn take_undelivered(&mut self) -> Vec<(NodeIx, Undelivered)> {
        core::mem::take(&mut self.undelivered)
    }

    pub fn index_of(&self, did: Did) -> Option<NodeIx> {
        self.index.get(&did).copied()
    }
}

/// Counts of members with a wrong successor or predecessor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingErrors {
    pub successor: u64,
    pub predecessor: u64,
    /// Members that are alone (no successor while others exist) or joining again.
    pub outside: u64,
}

impl RingErrors {
    pub fn is_zero(&self) -> bool {
        self.successor == 0 && self.predecessor == 0 && self.outside == 0
    }
}
