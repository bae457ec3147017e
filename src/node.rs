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

use std::collections::{HashMap, VecDeque};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::chord::{self, Config, ConfigError, DecodeError, Message, RequestId};
use crate::identity::Session;
use crate::store::{GetResult, OpId, PutError, Record, RecordKind, Store, StoreConfig, StoreError, StoreEvent, StoreMsg, STORE_TAG};
use crate::time::{Duration, Instant};
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
    pub store: StoreConfig,
}

/// What goes over a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkFrame {
    Ring(Message),
    /// An encoded routed frame ([`wire::Frame`]).
    Routed(Vec<u8>),
    /// An encoded store message ([`StoreMsg`]), to a direct peer.
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
    store: Store,
    ops: HashMap<u64, Op>,
    /// Ring lookups started for store operations.
    op_lookups: Vec<(RequestId, u64)>,
    /// Draws operation ids: unpredictable, so only the nodes asked can answer.
    op_rng: ChaCha20Rng,
    /// Records this node writes and keeps alive, by slot.
    published: Vec<Published>,
    next_republish: Instant,
    /// The predecessor changed since the last store maintenance.
    pred_changed: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

#[derive(Debug)]
struct Op {
    key: Did,
    deadline: Instant,
    what: OpKind,
    /// The node a put was sent to (only its acknowledgement counts).
    asked: Option<Did>,
    /// Hops the lookup of the key's owner took (0: this node owns it).
    hops: u8,
}

#[derive(Debug)]
enum OpKind {
    Put(Record),
    Get,
}

#[derive(Debug)]
struct Published {
    key: Did,
    kind: RecordKind,
    value: Vec<u8>,
    ttl: Duration,
    version: u64,
    renewed: Instant,
}

/// How soon after a change of predecessor or successor the store pushes its copies.
const STORE_REPAIR_DELAY: Duration = Duration(50);

/// Store messages are batched up to this many encoded bytes (a data channel message
/// stays far below 64 KiB).
const STORE_BATCH: usize = 32 << 10;

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
        let store = Store::new(cfg.store.clone(), cfg.wire.network, cfg.wire.skew);
        Ok(Node {
            ring,
            wire: Wire::new(did, session, cfg.wire, seed),
            store,
            ops: HashMap::new(),
            op_lookups: Vec::new(),
            op_rng: {
                let mut s = seed;
                s[31] ^= 0x0b; // a stream apart from the wire's
                ChaCha20Rng::from_seed(s)
            },
            published: Vec::new(),
            next_republish: now + cfg.store.republish,
            pred_changed: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
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
        &self.store
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
        let r = self.wire.send(now, self.ring.table(), dest, body);
        self.pump(now);
        r
    }

    // ---- inputs ----

    /// A frame arrived from the link peer `from`. A bad frame is counted and its reason
    /// returned; nothing else happens.
    pub fn handle_frame(&mut self, now: Instant, from: Did, bytes: &[u8]) -> Result<(), FrameError> {
        let r = if bytes.first() == Some(&wire::ROUTED_TAG) {
            self.wire.handle_frame(now, self.ring.table(), from, bytes).map_err(FrameError::Routed)
        } else if bytes.first() == Some(&STORE_TAG) {
            self.handle_store_frame(now, from, bytes).map_err(FrameError::Store)
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
        let late: Vec<u64> = self.ops.iter().filter(|(_, o)| o.deadline <= now).map(|(id, _)| *id).collect();
        for id in late {
            self.finish_op(id, None);
        }
        if now >= self.next_republish {
            self.next_republish = now + self.store.config().republish;
            self.maintain_store(now);
        }
        self.pump(now);
    }

    // ---- outputs ----

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let store = if self.store.is_empty() && self.published.is_empty() { None } else { Some(self.next_republish) };
        let ops = self.ops.values().map(|o| o.deadline).min();
        [self.ring.poll_timeout(), self.wire.poll_timeout(), store, ops].into_iter().flatten().min()
    }

    /// Moves both parts' outputs into the node's queues, in order; answers to the store's
    /// own lookups are taken here.
    fn pump(&mut self, now: Instant) {
        loop {
            while let Some(t) = self.ring.poll_transmit() {
                self.transmits.push_back(Transmit { to: t.to, frame: LinkFrame::Ring(t.message) });
            }
            let Some(e) = self.ring.poll_event() else { break };
            match e {
                chord::Event::LookupDone { id, owner, hops, .. } if self.op_lookups.iter().any(|(l, _)| *l == id) => {
                    let op = self.take_lookup(id);
                    if let Some(o) = self.ops.get_mut(&op) {
                        o.hops = hops;
                    }
                    self.op_at_owner(now, op, owner);
                }
                chord::Event::LookupFailed { id, .. } if self.op_lookups.iter().any(|(l, _)| *l == id) => {
                    let op = self.take_lookup(id);
                    self.finish_op(op, Some(Answer::NoRoute));
                }
                e => {
                    if matches!(e, chord::Event::PredecessorChanged { .. }) {
                        self.pred_changed = true;
                    }
                    if matches!(e, chord::Event::PredecessorChanged { .. } | chord::Event::SuccessorChanged { .. }) {
                        // Ownership or the replica set moved: repair copies soon.
                        self.next_republish = self.next_republish.min(now + STORE_REPAIR_DELAY);
                    }
                    self.events.push_back(Event::Ring(e));
                }
            }
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

/// How an operation ended, before it becomes an event.
enum Answer {
    Ack(Result<(), StoreError>),
    Records(Vec<Record>),
    NoRoute,
}

// ---- the store: puts, gets, replication ----
impl Node {
    /// Writes `value` at `key` (see [`Record::key_of`]) as this node's account, for
    /// `ttl`; ends with [`StoreEvent::Put`]. Refused at once if this node has no session
    /// or the value is over the limit.
    pub fn put(&mut self, now: Instant, key: Did, kind: RecordKind, value: Vec<u8>, ttl: Duration) -> Result<OpId, StoreError> {
        let version = self.published.iter().find(|p| (p.key, p.kind) == (key, kind)).map_or(0, |p| p.version);
        let record = self.sign_record(now, key, kind, value, ttl, version)?;
        // A plain put replaces what was kept alive: no renewal writes the old value back.
        self.published.retain(|p| (p.key, p.kind) != (key, kind));
        Ok(self.put_record(now, record))
    }

    /// Like [`Node::put`], and keeps the record alive: it is written again (a new
    /// version) every third of its lifetime until [`Node::unpublish`].
    pub fn publish(&mut self, now: Instant, key: Did, kind: RecordKind, value: Vec<u8>, ttl: Duration) -> Result<OpId, StoreError> {
        let last = self.published.iter().find(|p| (p.key, p.kind) == (key, kind)).map_or(0, |p| p.version);
        let version = now.as_millis().max(last + 1); // what `put` signs
        let op = self.put(now, key, kind, value.clone(), ttl)?;
        self.published.retain(|p| (p.key, p.kind) != (key, kind));
        self.published.push(Published { key, kind, value, ttl, version, renewed: now });
        self.pump(now);
        Ok(op)
    }

    /// Stops renewing a published record (it expires where it is stored).
    pub fn unpublish(&mut self, key: Did, kind: RecordKind) {
        self.published.retain(|p| (p.key, p.kind) != (key, kind));
    }

    /// Stores a record signed elsewhere (a client's); ends with [`StoreEvent::Put`].
    pub fn put_record(&mut self, now: Instant, record: Record) -> OpId {
        let key = record.key;
        let op = self.start_op(now, key, OpKind::Put(record));
        self.pump(now);
        op
    }

    /// Reads the records at `key` from its owner (or, if the owner holds none, its
    /// replicas); ends with [`StoreEvent::Get`].
    pub fn get(&mut self, now: Instant, key: Did) -> OpId {
        let op = self.start_op(now, key, OpKind::Get);
        self.pump(now);
        op
    }

    fn sign_record(
        &self,
        now: Instant,
        key: Did,
        kind: RecordKind,
        value: Vec<u8>,
        ttl: Duration,
        last: u64,
    ) -> Result<Record, StoreError> {
        let session = self.wire.session().ok_or(StoreError::NoSession)?;
        let cfg = self.store.config();
        if value.len() > cfg.max_value {
            return Err(StoreError::TooLarge);
        }
        if ttl > cfg.max_ttl {
            return Err(StoreError::TooLong);
        }
        // Versions follow the clock, so a restarted writer still overwrites its past.
        let version = now.as_millis().max(last + 1);
        // A record cannot outlive the delegation that vouches for it.
        let expires = (now.as_millis() + ttl.as_millis()).min(session.delegation().expires_at);
        Ok(Record::sign(session, key, kind, version, expires, value))
    }

    fn take_lookup(&mut self, id: RequestId) -> u64 {
        let at = self.op_lookups.iter().position(|(l, _)| *l == id);
        at.map_or(0, |i| self.op_lookups.swap_remove(i).1)
    }

    fn start_op(&mut self, now: Instant, key: Did, what: OpKind) -> OpId {
        let mut id = self.op_rng.next_u64();
        while self.ops.contains_key(&id) {
            id = self.op_rng.next_u64();
        }
        let deadline = now + self.store.config().request_timeout;
        self.ops.insert(id, Op { key, deadline, what, asked: None, hops: 0 });
        if self.ring.table().owns(key) || self.ring.successor().is_none() {
            self.op_at_owner(now, id, self.did());
        } else {
            let lookup = self.ring.lookup(now, key);
            self.op_lookups.push((lookup, id));
        }
        OpId(id)
    }

    /// The owner of an operation's key is known: ask it (or act, if it is this node).
    fn op_at_owner(&mut self, now: Instant, id: u64, owner: Did) {
        let Some(op) = self.ops.get(&id) else { return };
        let me = self.did();
        match &op.what {
            OpKind::Put(record) if owner == me => {
                let record = record.clone();
                let result = self.store_put(now, record);
                self.finish_op(id, Some(Answer::Ack(result)));
            }
            OpKind::Put(record) => {
                let msg = StoreMsg::Put { op: id, record: record.clone() };
                if let Some(o) = self.ops.get_mut(&id) {
                    o.asked = Some(owner);
                }
                self.send_store(owner, &msg);
            }
            OpKind::Get => {
                let key = op.key;
                let forwards = self.store.config().get_forwards;
                if owner == me {
                    self.serve_get(now, id, key, me, forwards);
                } else {
                    self.send_store(owner, &StoreMsg::Get { op: id, key, origin: me, forwards });
                }
            }
        }
    }

    /// Stores a record written to this node as its owner, and copies it to the replicas
    /// at once (the periodic push keeps them fresh).
    fn store_put(&mut self, now: Instant, record: Record) -> Result<(), StoreError> {
        let table = self.ring.table();
        let accepted = self.store.accept(now, record.clone(), &|k| table.owns(k))?;
        if accepted {
            let n = self.store.config().replicas.saturating_sub(1);
            let replicas: Vec<Did> = self.ring.table().successors().iter().copied().filter(|d| *d != self.did()).take(n).collect();
            for r in replicas {
                self.send_store(r, &StoreMsg::Replicate { records: vec![record.clone()] });
            }
        }
        Ok(())
    }

    fn serve_get(&mut self, now: Instant, op: u64, key: Did, origin: Did, forwards: u8) {
        let mut records = self.store.records_at(key, now);
        let next = self.ring.successor().filter(|s| *s != origin && *s != self.did());
        if records.is_empty() && forwards > 0 {
            if let Some(next) = next {
                self.send_store(next, &StoreMsg::Get { op, key, origin, forwards: forwards - 1 });
                return;
            }
        }
        // An answer stays one link message: a huge set is cut.
        let mut size = 0;
        records.retain(|r| {
            size += r.encoded_len();
            size <= STORE_BATCH
        });
        if origin == self.did() {
            self.finish_op(op, Some(Answer::Records(records)));
        } else {
            self.send_store(origin, &StoreMsg::GetReply { op, records });
        }
    }

    fn send_store(&mut self, to: Did, msg: &StoreMsg) {
        self.transmits.push_back(Transmit { to, frame: LinkFrame::Store(msg.encode()) });
    }

    fn handle_store_frame(&mut self, now: Instant, from: Did, bytes: &[u8]) -> Result<(), StoreError> {
        let msg = match StoreMsg::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.store.count(e);
                return Err(e);
            }
        };
        match msg {
            StoreMsg::Put { op, record } => {
                let result = self.store_put(now, record);
                self.send_store(from, &StoreMsg::PutAck { op, result });
                result
            }
            StoreMsg::PutAck { op, result } => {
                if self.ops.get(&op).is_some_and(|o| matches!(o.what, OpKind::Put(_)) && o.asked == Some(from)) {
                    self.finish_op(op, Some(Answer::Ack(result)));
                }
                Ok(())
            }
            StoreMsg::Get { op, key, origin, forwards } => {
                // Asked by the origin itself, or passed on by our predecessor; never on
                // behalf of this node (that would answer its own operations).
                let passed_on = self.ring.table().predecessor() == Some(from);
                if origin != self.did() && (origin == from || passed_on) {
                    let forwards = forwards.min(self.store.config().get_forwards);
                    self.serve_get(now, op, key, origin, forwards);
                }
                Ok(())
            }
            StoreMsg::GetReply { op, records } => {
                let Some(o) = self.ops.get(&op).filter(|o| matches!(o.what, OpKind::Get)) else {
                    return Ok(());
                };
                let key = o.key;
                // Every answer is checked here: a replica cannot forge or alter a record.
                // Bad records are dropped and counted one by one; the frame itself is taken.
                let mut good = Vec::with_capacity(records.len());
                for r in records {
                    match (r.key == key).then(|| self.store.check(now, &r)) {
                        Some(Ok(())) => good.push(r),
                        Some(Err(_)) => {}
                        None => self.store.count(StoreError::Malformed),
                    }
                }
                self.finish_op(op, Some(Answer::Records(good)));
                Ok(())
            }
            StoreMsg::Replicate { records } => {
                // Each copy is judged (and a refusal counted) on its own; an honest peer
                // never relays a forged one, so the first stops the batch.
                let table = self.ring.table();
                for r in records {
                    if let Err(StoreError::BadSignature | StoreError::BadDelegation) = self.store.accept(now, r, &|k| table.owns(k)) {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    /// Ends an operation with its answer (`None`: timed out) as an event.
    fn finish_op(&mut self, id: u64, answer: Option<Answer>) {
        let Some(op) = self.ops.remove(&id) else { return };
        self.op_lookups.retain(|(_, o)| *o != id);
        let (key, op_id, hops) = (op.key, OpId(id), op.hops);
        let answer = match answer {
            Some(Answer::Records(mut rs)) => {
                rs.retain(|r| r.key == key);
                Some(Answer::Records(rs))
            }
            a => a,
        };
        let event = match (op.what, answer) {
            (OpKind::Put(_), Some(Answer::Ack(r))) => StoreEvent::Put { op: op_id, key, hops, result: r.map_err(PutError::Refused) },
            (OpKind::Put(_), Some(Answer::NoRoute)) => StoreEvent::Put { op: op_id, key, hops, result: Err(PutError::NoRoute) },
            (OpKind::Put(_), _) => StoreEvent::Put { op: op_id, key, hops, result: Err(PutError::TimedOut) },
            (OpKind::Get, Some(Answer::Records(mut rs))) => {
                // A value: the freshest version wins.
                if rs.iter().all(|r| r.kind == RecordKind::Value) && rs.len() > 1 {
                    let best = rs.iter().enumerate().max_by_key(|(_, r)| r.version).map_or(0, |(i, _)| i);
                    rs.swap(0, best);
                    rs.truncate(1);
                }
                let result = if rs.is_empty() { GetResult::NotFound } else { GetResult::Found(rs) };
                StoreEvent::Get { op: op_id, key, hops, result }
            }
            (OpKind::Get, Some(Answer::NoRoute)) => StoreEvent::Get { op: op_id, key, hops, result: GetResult::NoRoute },
            (OpKind::Get, _) => StoreEvent::Get { op: op_id, key, hops, result: GetResult::TimedOut },
        };
        self.events.push_back(Event::Store(event));
    }

    /// The periodic work: owners push their records to their replicas; a node that lost
    /// a key to a newcomer hands it over; copies nobody refreshed go up to the
    /// predecessor, then expire; writers renew what they publish.
    fn maintain_store(&mut self, now: Instant) {
        self.store.expire(now.as_millis());
        let me = self.did();
        let table = self.ring.table();
        let n = self.store.config().replicas.saturating_sub(1);
        let replicas: Vec<Did> = table.successors().iter().copied().filter(|d| *d != me).take(n).collect();
        let pred = table.predecessor().filter(|p| *p != me);
        // A copy nobody refreshed for a push and a half may be missing at its owner.
        let hand_up_after = crate::time::Duration(self.store.config().republish.as_millis() * 3 / 2);
        // A new predecessor (a newcomer, or the one behind a failed node) may own any key
        // this node does not: it gets them all, once.
        let hand_all = std::mem::take(&mut self.pred_changed);
        let mut batches: Vec<(Did, Vec<Record>)> = Vec::new();
        let mut add = |to: Did, r: &Record| match batches.iter_mut().find(|(d, _)| *d == to) {
            Some((_, v)) => v.push(r.clone()),
            None => batches.push((to, vec![r.clone()])),
        };
        // With no predecessor known (it just failed), this node may own any key it holds:
        // acting as their owner keeps them replicated until the ring says otherwise.
        let owns_now = |k: Did| table.predecessor().is_none() || table.owns(k);
        for h in self.store.iter_mut() {
            let own = owns_now(h.record.key);
            if own {
                h.refreshed = now;
                for r in &replicas {
                    add(*r, &h.record);
                }
            } else if let Some(p) = pred {
                if h.owned || hand_all || h.refreshed + hand_up_after <= now {
                    add(p, &h.record);
                }
            }
            h.owned = own;
        }
        self.store.drop_stale_copies(now, &owns_now);
        for (to, records) in batches {
            let mut batch = Vec::new();
            let mut size = 0;
            for r in records {
                let len = r.encoded_len();
                if size + len > STORE_BATCH && !batch.is_empty() {
                    self.send_store(to, &StoreMsg::Replicate { records: std::mem::take(&mut batch) });
                    size = 0;
                }
                size += len;
                batch.push(r);
            }
            if !batch.is_empty() {
                self.send_store(to, &StoreMsg::Replicate { records: batch });
            }
        }
        // Writers renew a third of the way through a record's life.
        for i in 0..self.published.len() {
            let p = &self.published[i];
            if p.renewed + crate::time::Duration(p.ttl.as_millis() / 3) > now {
                continue;
            }
            let (key, kind, value, ttl, last) = (p.key, p.kind, p.value.clone(), p.ttl, p.version);
            if let Ok(record) = self.sign_record(now, key, kind, value, ttl, last) {
                let p = &mut self.published[i];
                p.version = record.version;
                p.renewed = now;
                self.start_op(now, key, OpKind::Put(record));
            }
        }
    }
}
