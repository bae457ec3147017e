//! A link-mode node with its application's requests: what the browser's `Provider` and
//! the native node's JSON-RPC both are. Requests start here and wait on a token of the
//! driver's (`T`: a promise's resolve/reject, a reply channel); node events settle them
//! or become application events. The driver still performs the node's [`LinkIo`] on real
//! connections and drains [`Front::take`] after each step.
//!
//! [`LinkIo`]: crate::node::LinkIo

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::error::{ApiError, ErrorCode};
use super::view::{self, Value};
use crate::identity::Session;
use crate::link::{CloseReason, ConnId, LinkConfig, Negotiation};
use crate::node::{Event, Identity, LinkEvent, LinkIo, Node, NodeConfig};
use crate::signal::{Signal, SignalError, SignalKind};
use crate::store::{GetResult, OpId, Record, RecordKind, StoreEvent};
use crate::time::{Duration, Instant};
use crate::Did;

/// A manual offer waits this long for its answer (a human may carry it), and a manual
/// signal is accepted this old.
pub const MANUAL_SIGNAL_MAX_AGE: Duration = Duration::from_secs(600);
/// Manual offers remembered for their answers (a new one replaces the oldest).
const MAX_MANUAL: usize = 16;
/// Requests waiting for links.
const MAX_WAITERS: usize = 256;
/// Store requests waiting for their outcome.
const MAX_STORE_WAITERS: usize = 4096;
/// Offers answered (by digest) remembered while they could still be replayed.
const MAX_ANSWERED: usize = 64;

/// A node's configuration for links that are data channels (WebRTC, in the browser or
/// native): `max_connections` links at most, half of them opened by peers' offers.
pub fn data_channel_config(network: u32, max_connections: u32, connect_timeout_ms: u32, low_water: usize) -> NodeConfig {
    let mut cfg = NodeConfig::default();
    cfg.wire.network = network;
    // A data channel buffers far more than the simulator's links: keep 3 MiB in flight
    // beyond `low_water`, so the link never waits on the sealing of the next message.
    cfg.wire.link_window = 3 << 20;
    // A hop may have to open a link first, and a ring request can wait behind megabytes
    // in the same ordered channel; dead links are noticed by WebRTC itself.
    cfg.ring.hop_timeout = crate::link::RING_HOP_TIMEOUT;
    let max_links = max_connections.max(2) as usize;
    let d = LinkConfig::default();
    cfg.links = Some(LinkConfig {
        max_links,
        max_by_peers: (max_links / 2).max(1),
        max_answering: d.max_answering.min(max_links),
        connect_timeout: Duration::from_millis(u64::from(connect_timeout_ms.max(1000))),
        low_water,
        ..d
    });
    cfg
}

/// What a request waits for (see [`Front::wait`]).
#[derive(Debug)]
#[must_use = "a request settles only once its wait is registered with `Front::wait`"]
pub enum Wait {
    /// A manual handshake's local description, settled with its signed text.
    Described(ConnId, Manual),
    /// The link to a peer, settled with its DID once open.
    Open(Did),
    /// A `put` (settled with `Null`) or a `get` (a list of records).
    Store(OpId),
    /// Already done.
    Ready(Value),
}

/// Which side of a manual handshake a description is.
#[derive(Clone, Copy, Debug)]
pub enum Manual {
    Offer,
    Answer { digest: [u8; 32] },
}

/// An outcome for a request's token.
pub type Settled<T> = (T, Result<Value, ApiError>);

pub struct Front<T> {
    node: Node,
    session: Session,
    rng: ChaCha20Rng,
    /// Our manual offers by the digest of their signed text.
    manual_offers: Vec<([u8; 32], Negotiation)>,
    describing: Vec<(ConnId, Manual, T)>,
    opening: Vec<(Did, T)>,
    store_ops: Vec<(OpId, T)>,
    /// Digests of the manual offers answered, with when (monotonic) and the offer's
    /// issue time (wall): an offer is answered once.
    answered: Vec<([u8; 32], Instant, u64)>,
    events: Vec<Value>,
    settled: Vec<Settled<T>>,
    closed: bool,
}

impl<T> Front<T> {
    pub fn new(session: Session, cfg: NodeConfig, seed: [u8; 32], now: Instant) -> Result<Front<T>, ApiError> {
        let node = Node::new(Identity::Session(session.clone()), cfg, seed, now)
            .map_err(|e| ApiError::new(ErrorCode::BadArgument, format!("{e:?}")))?;
        let mut rng_seed = seed;
        rng_seed[0] ^= 0x5a; // a stream apart from the node's
        Ok(Front {
            node,
            session,
            rng: ChaCha20Rng::from_seed(rng_seed),
            manual_offers: Vec::new(),
            describing: Vec::new(),
            opening: Vec::new(),
            store_ops: Vec::new(),
            answered: Vec::new(),
            events: Vec::new(),
            settled: Vec::new(),
            closed: false,
        })
    }

    pub fn node(&self) -> &Node {
        &self.node
    }
    pub fn node_mut(&mut self) -> &mut Node {
        &mut self.node
    }

    /// Registers `token` for what a request waits for. Register it right after the
    /// request, before the node's events are drained (they settle it).
    pub fn wait(&mut self, w: Wait, token: T) {
        if self.closed {
            return self.settled.push((token, Err(ApiError::closed())));
        }
        match w {
            Wait::Ready(v) => self.settled.push((token, Ok(v))),
            Wait::Described(conn, m) => self.describing.push((conn, m, token)),
            Wait::Open(_) if self.opening.len() >= MAX_WAITERS => {
                self.settled.push((token, Err(ApiError::new(ErrorCode::Busy, "too many connections awaited"))))
            }
            Wait::Open(peer) => self.opening.push((peer, token)),
            Wait::Store(_) if self.store_ops.len() >= MAX_STORE_WAITERS => {
                self.settled.push((token, Err(ApiError::new(ErrorCode::Busy, "too many store requests waiting"))))
            }
            Wait::Store(op) => self.store_ops.push((op, token)),
        }
    }

    /// What to do with a connection next ([`Node::poll_link`]); a connection that closes
    /// fails the manual handshake waiting for its description.
    #[must_use]
    pub fn poll_link(&mut self) -> Option<LinkIo> {
        let io = self.node.poll_link()?;
        if let LinkIo::Close { conn, .. } = &io {
            self.connection_failed(*conn, None);
        }
        Some(io)
    }

    /// Application events and settled requests since the last call (the driver takes
    /// them after every step; they are not bounded otherwise).
    #[must_use]
    pub fn take(&mut self) -> (Vec<Value>, Vec<Settled<T>>) {
        (std::mem::take(&mut self.events), std::mem::take(&mut self.settled))
    }

    // ---- requests ----

    /// A signed offer for a manual handshake (copy-paste, QR code, HTTP).
    pub fn create_offer(&mut self, now: Instant) -> Result<Wait, ApiError> {
        self.open()?;
        let (conn, _) = self.node.manual_offer(now, MANUAL_SIGNAL_MAX_AGE).ok_or_else(no_room)?;
        Ok(Wait::Described(conn, Manual::Offer))
    }

    /// Answers a peer's signed offer: settled with the signed answer to send back.
    pub fn answer_offer(&mut self, now: Instant, text: &str) -> Result<Wait, ApiError> {
        self.open()?;
        let (signal, from) = self.verified(now, text, false)?;
        if from == self.node.did() {
            return Err(ApiError::new(ErrorCode::BadArgument, "this is our own offer"));
        }
        let digest = signal.digest();
        // Answered once: a replayed offer would replace the link it made.
        // Forgotten once both clocks agree it is stale (a wall clock set back would make it
        // valid again; a monotonic one may lag).
        let (wall, age) = (self.node.wall_clock(now).as_millis(), MANUAL_SIGNAL_MAX_AGE.as_millis() * 2);
        self.answered.retain(|(_, at, issued)| now.0 < at.0 + age || wall < issued.saturating_add(age));
        if self.answered.iter().any(|(d, _, _)| *d == digest) {
            return Err(ApiError::new(ErrorCode::BadOffer, "this offer was answered already"));
        }
        let issued = signal.issued_at;
        let conn = self.node.answer_manual(now, from, signal.sdp).ok_or_else(no_room)?;
        if self.answered.len() >= MAX_ANSWERED {
            self.answered.remove(0);
        }
        self.answered.push((digest, now, issued));
        Ok(Wait::Described(conn, Manual::Answer { digest }))
    }

    /// Takes the answer to one of our offers: settled with the peer's DID once the link
    /// is open (a node alone then joins the ring through it).
    pub fn accept_answer(&mut self, now: Instant, text: &str) -> Result<Wait, ApiError> {
        self.open()?;
        let (signal, from) = self.verified(now, text, true)?;
        let SignalKind::Answer(digest) = signal.kind else {
            return Err(ApiError::new(ErrorCode::BadAnswer, "not an answer"));
        };
        let held = self.manual_offers.iter().position(|(d, _)| *d == digest);
        let Some((_, n)) = held.map(|at| self.manual_offers.remove(at)) else {
            return Err(ApiError::new(ErrorCode::BadAnswer, "answer to an offer this node does not hold"));
        };
        if self.node.accept_manual_answer(now, n, from, signal.sdp).is_none() {
            return Err(ApiError::new(ErrorCode::BadAnswer, "the offer is gone (timed out or closed)"));
        }
        Ok(Wait::Open(from))
    }

    /// Opens a link to `peer`, signalled through the ring: settled with its DID once open.
    pub fn connect(&mut self, now: Instant, peer: Did) -> Result<Wait, ApiError> {
        self.open()?;
        if peer == self.node.did() {
            return Err(ApiError::new(ErrorCode::BadArgument, "cannot connect to ourselves"));
        }
        if self.node.links().is_some_and(|l| l.is_open(peer)) {
            return Ok(Wait::Ready(Value::did(peer)));
        }
        self.node.connect(now, peer).ok_or_else(|| ApiError::new(ErrorCode::ConnectFailed, "cannot start a connection"))?;
        Ok(Wait::Open(peer))
    }

    /// Sends application bytes, signed and end-to-end encrypted; the transaction id is
    /// named by a later `undelivered` event.
    pub fn send(&mut self, now: Instant, to: Did, data: &[u8]) -> Result<u64, ApiError> {
        self.open()?;
        Ok(self.node.send_from(now, to, data)?)
    }

    /// Writes `value` at `key` (stored at sha1 of the key) for `ttl_ms`: a single value
    /// (`set` false: only its writer may overwrite it) or this account's entry in an
    /// append-set; `keep`: rewritten while the node lives.
    pub fn put(&mut self, now: Instant, key: &[u8], set: bool, value: Vec<u8>, ttl_ms: f64, keep: bool) -> Result<Wait, ApiError> {
        self.open()?;
        if !(ttl_ms.is_finite() && ttl_ms >= 1.0) {
            return Err(ApiError::new(ErrorCode::BadArgument, "ttlMs must be a positive number"));
        }
        let (ring_key, kind, ttl) = (Record::key_of(key), kind(set), Duration(ttl_ms as u64));
        let op = if keep { self.node.publish(now, ring_key, kind, value, ttl) } else { self.node.put(now, ring_key, kind, value, ttl) };
        Ok(Wait::Store(op?))
    }

    /// The live records at `key`, checked against their writers' signatures.
    pub fn get(&mut self, now: Instant, key: &[u8]) -> Wait {
        Wait::Store(self.node.get(now, Record::key_of(key)))
    }

    /// Stops rewriting a record kept by `put(…, keep)`.
    pub fn forget(&mut self, key: &[u8], set: bool) {
        self.node.unpublish(Record::key_of(key), kind(set));
    }

    /// `{did, joined, successor, …, stats}` ([`view::info`]), with the driver's counters.
    pub fn info(&self, extra: Vec<(&'static str, Value)>) -> Value {
        view::info(&self.node, extra)
    }

    /// DIDs with an open link, sorted.
    pub fn peers(&self) -> Vec<Did> {
        // Inserted in order: a few dozen links, and no sort routine in the wasm for them.
        let mut v: Vec<Did> = Vec::new();
        for d in self.node.links().into_iter().flat_map(|l| l.open_peers()) {
            v.insert(v.partition_point(|x| *x < d), d);
        }
        v
    }

    fn open(&self) -> Result<(), ApiError> {
        if self.closed {
            return Err(ApiError::closed());
        }
        Ok(())
    }

    /// Fails every request still waiting (`CLOSED`) and closes every link; later
    /// requests fail `CLOSED`.
    pub fn close(&mut self, now: Instant) {
        self.closed = true;
        let pending = self.describing.drain(..).map(|(_, _, t)| t);
        let pending: Vec<T> =
            pending.chain(self.opening.drain(..).map(|(_, t)| t)).chain(self.store_ops.drain(..).map(|(_, t)| t)).collect();
        self.settled.extend(pending.into_iter().map(|t| (t, Err(ApiError::closed()))));
        self.node.close_links(now);
    }

    // ---- what the driver reports ----

    /// `conn`'s local description is ready; a manual handshake's is signed for its
    /// request.
    pub fn handle_description(&mut self, now: Instant, conn: ConnId, sdp: String) {
        self.node.handle_local_description(now, conn, sdp.clone());
        if let Some((m, token)) = self.take_describing(conn) {
            let text = self.sign_manual(now, conn, m, sdp);
            self.settled.push((token, Ok(Value::Str(text))));
        }
    }

    /// `conn` failed before its description was ready (`why`: the error; `None`: it
    /// closed). The driver reports the connection closed as well.
    pub fn connection_failed(&mut self, conn: ConnId, why: Option<ApiError>) {
        if let Some((_, token)) = self.take_describing(conn) {
            let e = why.unwrap_or_else(|| ApiError::new(ErrorCode::ConnectFailed, "the connection closed"));
            self.settled.push((token, Err(e)));
        }
    }

    /// The code for a description that could not be made: the platform's fault for
    /// our offer, the offer's for an answer (its SDP would not set).
    pub fn description_error(&self, conn: ConnId, why: String) -> ApiError {
        let answer = self.describing.iter().any(|(c, m, _)| *c == conn && matches!(m, Manual::Answer { .. }));
        ApiError::new(if answer { ErrorCode::BadOffer } else { ErrorCode::Webrtc }, why)
    }

    /// Handles the node's events; `true` if there were any. A manual handshake whose
    /// connection the link manager no longer holds fails (it closed, or timed out).
    pub fn drain_events(&mut self) -> bool {
        let mut any = false;
        while let Some(e) = self.node.poll_event() {
            any = true;
            self.on_event(e);
        }
        let gone: Vec<ConnId> =
            self.describing.iter().map(|(c, _, _)| *c).filter(|c| !self.node.links().is_some_and(|l| l.has(*c))).collect();
        for conn in gone {
            self.connection_failed(conn, None);
        }
        any
    }

    fn on_event(&mut self, e: Event) {
        match &e {
            Event::Store(s) => return self.on_store_event(s),
            Event::Link(LinkEvent::Up { peer }) => self.settle_opening(*peer, Ok(Value::did(*peer))),
            Event::Link(LinkEvent::Down { peer, reason, .. }) => {
                // Glare: what waited for our offer waits for the peer's, which won.
                let replaced = *reason == CloseReason::Replaced && self.node.links().is_some_and(|l| l.holds(*peer));
                if !replaced {
                    self.settle_opening(*peer, Err(ApiError::new(ErrorCode::ConnectFailed, view::reason_text(*reason))));
                }
            }
            _ => {}
        }
        if let Some(v) = view::event(&self.node, &e) {
            self.events.push(v);
        }
    }

    fn settle_opening(&mut self, peer: Did, v: Result<Value, ApiError>) {
        let mut i = 0;
        while i < self.opening.len() {
            if self.opening[i].0 == peer {
                let (_, t) = self.opening.swap_remove(i);
                self.settled.push((t, v.clone()));
            } else {
                i += 1;
            }
        }
    }

    /// Settles a finished `put` or `get` (renewals have no request).
    fn on_store_event(&mut self, e: &StoreEvent) {
        let (op, result) = match e {
            StoreEvent::Put { op, result, .. } => (*op, (*result).map(|()| Value::Null).map_err(ApiError::from)),
            StoreEvent::Get { op, result, .. } => (
                *op,
                match result {
                    GetResult::Found(rs) => Ok(Value::List(rs.iter().map(view::record).collect())),
                    GetResult::NotFound => Ok(Value::List(Vec::new())),
                    GetResult::TimedOut => Err(ApiError::timed_out()),
                    GetResult::NoRoute => Err(ApiError::no_route()),
                },
            ),
        };
        if let Some(at) = self.store_ops.iter().position(|(id, _)| *id == op) {
            let (_, t) = self.store_ops.swap_remove(at);
            self.settled.push((t, result));
        }
    }

    // ---- manual signals ----

    /// Whether `conn` is a manual handshake's, its description awaited.
    pub fn is_manual(&self, conn: ConnId) -> bool {
        self.describing.iter().any(|(c, _, _)| *c == conn)
    }

    fn take_describing(&mut self, conn: ConnId) -> Option<(Manual, T)> {
        let at = self.describing.iter().position(|(c, _, _)| *c == conn)?;
        let (_, m, t) = self.describing.swap_remove(at);
        Some((m, t))
    }

    /// The signal in `text`, verified, and its signer.
    fn verified(&self, now: Instant, text: &str, answer: bool) -> Result<(Signal, Did), ApiError> {
        let code = if answer { ErrorCode::BadAnswer } else { ErrorCode::BadOffer };
        let signal = Signal::from_text(text).map_err(|e| ApiError::new(code, e))?;
        if matches!(signal.kind, SignalKind::Answer(_)) != answer {
            return Err(ApiError::new(code, SignalError::WrongKind));
        }
        let wire = self.node.wire().config();
        let wall = self.node.wall_clock(now);
        let from = signal.verify(wire.network, wall, MANUAL_SIGNAL_MAX_AGE, wire.skew).map_err(|e| ApiError::new(code, e))?;
        Ok((signal, from))
    }

    /// The signed text of a manual handshake's description; an offer is remembered for
    /// its answer.
    fn sign_manual(&mut self, now: Instant, conn: ConnId, m: Manual, sdp: String) -> String {
        let kind = match m {
            Manual::Offer => SignalKind::Offer,
            Manual::Answer { digest } => SignalKind::Answer(digest),
        };
        let nonce = self.rng.next_u64();
        let signal = Signal::new(&self.session, kind, sdp, self.node.wall_clock(now), nonce);
        if let (Manual::Offer, Some(n)) = (m, self.node.links().and_then(|l| l.negotiation_of(conn))) {
            if self.manual_offers.len() >= MAX_MANUAL {
                self.manual_offers.remove(0);
            }
            self.manual_offers.push((signal.digest(), n));
        }
        signal.to_text()
    }
}

fn kind(set: bool) -> RecordKind {
    if set {
        RecordKind::Set
    } else {
        RecordKind::Value
    }
}

fn no_room() -> ApiError {
    ApiError::new(ErrorCode::Busy, "no room for another connection (every link is kept: young, a ring neighbour, or opening)")
}
