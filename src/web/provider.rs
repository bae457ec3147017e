//! The WebRTC driver: one [`Node`] in link mode, driven by the browser's event loop.
//! Every link decision (when a link opens, the cap and eviction, glare, the queue of
//! bytes waiting for a link, credit, silent peers, joining through the first link) is
//! the core's ([`crate::link`]); this driver performs what [`Node::poll_link`] asks on
//! real `RTCPeerConnection`s ([`Rtc`]) and reports what they did.
//!
//! - Ring-signalled links: offers, answers and candidates travel through the ring as the
//!   core's link messages. A description leaves after its first candidates (a short
//!   grace), the rest trickle.
//! - Manual bootstrap: `createOffer` / `answerOffer` / `acceptAnswer` carry signed text.
//! - Events reach JS only after the driver's state is released, so a handler may call
//!   back into the provider.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{RtcIceServer, RtcSdpType};

use super::rtc::{clear_timeout, set_timeout, Rtc, GATHER_LIMIT_MS, LOW_WATER};
use super::session::WasmSession;
use super::{js_error, parse_did};
use crate::chord;
use crate::link::{Candidate, CloseReason, ConnId, LinkConfig, Negotiation};
use crate::node::{Event, Identity, LinkEvent, LinkIo, Node, NodeConfig};
use crate::store::{GetResult, PutError, Record, RecordKind, StoreError, StoreEvent};
use crate::time::{Duration, Instant};
use crate::wire::SendError;
use crate::Did;

/// The ring's patience with a peer's answer (the simulator's default is 500 ms).
const RING_HOP_TIMEOUT: Duration = Duration::from_millis(2000);
/// Routed-frame bytes handed to one channel beyond LOW_WATER (Chromium accepts 16 MiB).
const LINK_WINDOW: usize = 3 << 20;
/// A manual offer waits this long for its answer (a human may carry it), and a manual
/// signal is accepted this old.
pub(super) const MANUAL_SIGNAL_MAX_AGE: Duration = Duration::from_secs(600);
/// After the first ICE candidate, how long a manual description waits for more.
const CANDIDATE_GRACE_MS: i32 = 15;
/// Promises waiting for links.
const MAX_WAITERS: usize = 256;
/// How long a connection closed in agreement may take to send what it buffered.
const RETIRE_LIMIT: Duration = Duration::from_millis(5000);

pub(super) fn now() -> Instant {
    Instant(js_sys::Date::now() as u64)
}

type Settle = (js_sys::Function, js_sys::Function);

/// A connection the core asked for.
struct Conn {
    rtc: Rtc,
    /// Candidates gathered before the description left are in it (`grace` set).
    described: bool,
    grace: Option<i32>,
}

/// What a manual handshake's promise waits for: its description, signed.
pub(super) enum Manual {
    Offer,
    Answer { digest: [u8; 32] },
}

pub(crate) struct Inner {
    pub(super) node: Node,
    pub(super) session: WasmSession,
    pub(super) network: u32,
    ice_servers: js_sys::Array,
    /// How long a ring-signalled description waits after its first candidate.
    ring_grace: Option<i32>,
    pub(super) rng: ChaCha20Rng,
    conns: HashMap<ConnId, Conn>,
    /// Connections closed in agreement whose channel still sends what it buffered.
    retiring: Vec<(Rtc, Instant)>,
    /// Manual handshakes waiting for their description.
    describing: HashMap<ConnId, (Settle, Manual)>,
    /// Our manual offers by the digest of their signed text.
    pub(super) manual_offers: Vec<([u8; 32], Negotiation)>,
    /// `connect()` / `acceptAnswer()` promises, settled when the link opens or goes.
    opening: Vec<(Did, Settle)>,
    on_event: js_sys::Function,
    /// Events for JS, delivered once the state is released.
    out: Vec<JsValue>,
    /// Promise settlements, run once the state is released.
    pub(super) settle: Vec<(js_sys::Function, JsValue)>,
    /// `put` / `get` promises by store operation.
    store_ops: Vec<(u64, js_sys::Function, js_sys::Function)>,
    timer: Option<JsValue>,
    timer_cb: Option<Closure<dyn FnMut()>>,
    pub(super) closed: bool,
    me: Weak<RefCell<Inner>>,
}

pub(super) type Shared = Rc<RefCell<Inner>>;

/// Runs `f` on the driver state, drives the node, then (state released) delivers events
/// and settles promises.
pub(super) fn with(weak: &Weak<RefCell<Inner>>, f: impl FnOnce(&mut Inner)) {
    let Some(rc) = weak.upgrade() else { return };
    let (events, settle, handler) = {
        let Ok(mut i) = rc.try_borrow_mut() else {
            return;
        };
        if i.closed {
            return;
        }
        f(&mut i);
        i.pump();
        (std::mem::take(&mut i.out), std::mem::take(&mut i.settle), i.on_event.clone())
    };
    for (f, v) in settle {
        let _ = f.call1(&JsValue::UNDEFINED, &v);
    }
    for e in events {
        let _ = handler.call1(&JsValue::UNDEFINED, &e);
    }
}

fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let o = js_sys::Object::new();
    for (k, v) in fields {
        let _ = js_sys::Reflect::set(&o, &(*k).into(), v);
    }
    o.into()
}

/// An event for JS: `{type: kind, …fields}`.
fn event(kind: &str, fields: &[(&str, JsValue)]) -> JsValue {
    let o = object(fields);
    let _ = js_sys::Reflect::set(&o, &"type".into(), &kind.into());
    o
}

fn did_js(d: Did) -> JsValue {
    d.to_checksum().into()
}

fn reason_text(r: CloseReason) -> &'static str {
    match r {
        CloseReason::TimedOut => "connection timed out",
        CloseReason::Evicted => "connection limit: least recently used",
        CloseReason::Replaced => "replaced by a newer connection",
        CloseReason::Silent => "peer unreachable",
        CloseReason::SignalUndeliverable => "signal undeliverable",
        CloseReason::Closed => "disconnected",
        CloseReason::PeerClosed => "closed by the peer",
        CloseReason::Drained => "closed",
        CloseReason::Lost => "connection lost",
    }
}

impl Inner {
    // ---- the run loop ----

    /// Drains the node until it is quiet: connection work, events to JS, credit back
    /// from drained channels; then sets the timer.
    fn pump(&mut self) {
        loop {
            let mut work = false;
            while let Some(io) = self.node.poll_link() {
                work = true;
                self.perform(io);
            }
            while let Some(e) = self.node.poll_event() {
                work = true;
                self.on_node_event(e);
            }
            let owed = self.node.links().map(|l| l.owed());
            let open: Vec<(ConnId, u32)> = self
                .conns
                .iter()
                .filter(|(id, _)| owed.as_ref().is_some_and(|o| o.contains(id)))
                .map(|(&id, c)| (id, c.rtc.dc.buffered_amount()))
                .collect();
            for (id, buffered) in open {
                work |= self.node.handle_link_buffered(now(), id, buffered as usize);
            }
            if !work {
                break;
            }
        }
        let t = now();
        self.retiring.retain(|(r, until)| r.dc.buffered_amount() > 0 && *until > t);
        // While a retiring channel drains, look again soon.
        let retire = (!self.retiring.is_empty()).then(|| t + Duration::from_millis(50));
        let wake = [self.node.poll_timeout(), retire].into_iter().flatten().min();
        if let Some(t) = self.timer.take() {
            clear_timeout(&t);
        }
        if let (Some(wake), Some(cb)) = (wake, self.timer_cb.as_ref()) {
            let delay = wake.0.saturating_sub(now().0).min(i32::MAX as u64) as i32;
            self.timer = Some(set_timeout(cb.as_ref().unchecked_ref(), delay));
        }
    }

    fn perform(&mut self, io: LinkIo) {
        match io {
            LinkIo::Create { conn, answer_to } => {
                let rtc = match Rtc::new(&self.ice_servers, conn, &self.me) {
                    Ok(r) => r,
                    Err(e) => {
                        if let Some(((_, reject), _)) = self.describing.remove(&conn) {
                            self.settle.push((reject, e));
                        }
                        return self.node.handle_link_closed(now(), conn);
                    }
                };
                let grace = if self.describing.contains_key(&conn) { Some(CANDIDATE_GRACE_MS) } else { self.ring_grace };
                let (task, me) = (rtc.io.clone(), self.me.clone());
                let offer = answer_to.map(|o| task.set_remote(RtcSdpType::Offer, &o));
                self.conns.insert(conn, Conn { rtc, described: false, grace });
                wasm_bindgen_futures::spawn_local(async move {
                    let sdp = task.local_sdp(offer, grace).await;
                    with(&me, |i| i.described(conn, sdp));
                });
            }
            LinkIo::SetAnswer { conn, sdp } => {
                let Some(c) = self.conns.get(&conn) else { return };
                let (task, me) = (c.rtc.io.clone(), self.me.clone());
                let op = task.set_remote(RtcSdpType::Answer, &sdp);
                wasm_bindgen_futures::spawn_local(async move {
                    if task.remote(op).await.is_err() {
                        with(&me, |i| i.lost(conn));
                    }
                });
            }
            LinkIo::AddCandidate { conn, candidate } => {
                if let Some(c) = self.conns.get(&conn) {
                    c.rtc.io.add_candidate(&candidate);
                }
            }
            LinkIo::Send { conn, bytes } => {
                if self.conns.get(&conn).is_some_and(|c| c.rtc.dc.send_with_u8_array(&bytes).is_err()) {
                    self.lost(conn);
                }
            }
            LinkIo::Close { conn, reason } => {
                let Some(c) = self.conns.remove(&conn) else { return };
                // Closed in agreement: what the channel still buffers is sent before the
                // connection goes (the peer receives until we close). Else dropped now:
                // closed, every handler unset.
                if matches!(reason, CloseReason::PeerClosed | CloseReason::Drained) && c.rtc.dc.buffered_amount() > 0 {
                    self.retiring.push((c.rtc, now() + RETIRE_LIMIT));
                }
                if let Some(((_, reject), _)) = self.describing.remove(&conn) {
                    self.settle.push((reject, js_error("CONNECT_FAILED", "the connection closed")));
                }
            }
        }
    }

    /// The connection's description is ready (or could not be made).
    fn described(&mut self, conn: ConnId, sdp: Result<String, JsValue>) {
        let waiter = self.describing.remove(&conn);
        let sdp = match sdp {
            Ok(s) => s,
            Err(e) => {
                if let Some(((_, reject), m)) = waiter {
                    let code = if matches!(m, Manual::Offer) { "WEBRTC" } else { "BAD_OFFER" };
                    self.settle.push((reject, js_error(code, format!("{e:?}"))));
                }
                return self.lost(conn);
            }
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.described = true;
        }
        self.node.handle_local_description(now(), conn, sdp.clone());
        if let Some(((resolve, _), manual)) = waiter {
            let text = self.sign_manual(conn, manual, sdp);
            self.settle.push((resolve, text.into()));
        }
    }

    /// The connection closed or failed on its own.
    pub(super) fn lost(&mut self, conn: ConnId) {
        if self.conns.remove(&conn).is_some() {
            self.node.handle_link_closed(now(), conn);
        }
    }

    pub(super) fn local_candidate(&mut self, conn: ConnId, candidate: Candidate) {
        // Gathered before a description with candidates left: it is in it.
        if self.conns.get(&conn).is_some_and(|c| c.grace.is_some() && !c.described) {
            return;
        }
        self.node.handle_local_candidate(now(), conn, candidate);
    }

    pub(super) fn grace_of(&self, conn: ConnId) -> i32 {
        self.conns.get(&conn).and_then(|c| c.grace).unwrap_or(0)
    }

    /// A promise settled once `conn`'s description is signed (`Manual`).
    pub(super) fn wait_description(&mut self, conn: ConnId, m: Manual) -> js_sys::Promise {
        let mut slot = None;
        let p = js_sys::Promise::new(&mut |resolve, reject| slot = Some((resolve, reject)));
        if let Some(s) = slot {
            self.describing.insert(conn, (s, m));
        }
        p
    }

    /// A promise settled when the link to `peer` opens (with its DID) or fails.
    pub(super) fn wait_open(&mut self, peer: Did) -> Result<js_sys::Promise, JsValue> {
        if self.opening.len() >= MAX_WAITERS {
            return Err(js_error("BUSY", "too many connections awaited"));
        }
        let mut slot = None;
        let p = js_sys::Promise::new(&mut |resolve, reject| slot = Some((resolve, reject)));
        if let Some(s) = slot {
            self.opening.push((peer, s));
        }
        Ok(p)
    }

    fn on_timer(&mut self) {
        self.timer = None;
        self.node.handle_timeout(now());
    }

    fn on_node_event(&mut self, e: Event) {
        match e {
            Event::Message(d) => {
                let data = js_sys::Uint8Array::from(&d.body[..]);
                self.out.push(event("message", &[("from", did_js(d.from)), ("data", data.into()), ("hops", d.hops.into())]));
            }
            Event::Undelivered(u) => self.out.push(event(
                "undelivered",
                &[("tx", u.tx.into()), ("to", did_js(u.dest)), ("reason", format!("{:?}", u.reason).into())],
            )),
            Event::Store(e) => self.on_store_event(e),
            Event::Link(LinkEvent::Up { peer }) => {
                self.settle_opening(peer, Ok(did_js(peer)));
                self.out.push(event("peerUp", &[("did", did_js(peer))]));
            }
            Event::Link(LinkEvent::Down { peer, was_open, reason }) => {
                // Glare: what waited for our offer waits for the peer's, which won.
                let replaced = reason == CloseReason::Replaced && self.node.links().is_some_and(|l| l.holds(peer));
                if !replaced {
                    self.settle_opening(peer, Err(js_error("CONNECT_FAILED", reason_text(reason))));
                }
                if was_open {
                    self.out.push(event("peerDown", &[("did", did_js(peer)), ("reason", reason_text(reason).into())]));
                }
            }
            Event::Acknowledged { .. } => {} // not asked for (no `delivery_timeout`)
            Event::Ring(r) => match r {
                chord::Event::Joined { .. } => self.out.push(event("joined", &[])),
                chord::Event::JoinFailed { error, .. } => self.out.push(event("joinFailed", &[("reason", format!("{error:?}").into())])),
                chord::Event::SuccessorChanged { .. } | chord::Event::PredecessorChanged { .. } => {
                    let table = self.node.ring();
                    let succ = table.successor().map_or(JsValue::NULL, did_js);
                    let pred = table.predecessor().map_or(JsValue::NULL, did_js);
                    self.out.push(event("ringChanged", &[("successor", succ), ("predecessor", pred)]));
                }
                _ => {}
            },
        }
    }

    fn settle_opening(&mut self, peer: Did, v: Result<JsValue, JsValue>) {
        let mut i = 0;
        while i < self.opening.len() {
            if self.opening[i].0 != peer {
                i += 1;
                continue;
            }
            let (_, (resolve, reject)) = self.opening.swap_remove(i);
            match &v {
                Ok(v) => self.settle.push((resolve, v.clone())),
                Err(e) => self.settle.push((reject, e.clone())),
            }
        }
    }

    /// Settles the promise of a finished `put` or `get` (renewals have none).
    fn on_store_event(&mut self, e: StoreEvent) {
        let timeout = || js_error("TIMEOUT", "the key's owner did not answer in time");
        let no_route = || js_error("UNDELIVERED", "the key's owner could not be found");
        let (op, settle) = match e {
            StoreEvent::Put { op, result, .. } => (
                op,
                match result {
                    Ok(()) => Ok(JsValue::UNDEFINED),
                    Err(PutError::Refused(e)) => Err(store_error(e)),
                    Err(PutError::TimedOut) => Err(timeout()),
                    Err(PutError::NoRoute) => Err(no_route()),
                },
            ),
            StoreEvent::Get { op, result, .. } => (
                op,
                match result {
                    GetResult::Found(rs) => Ok(rs.iter().map(record_js).collect::<js_sys::Array>().into()),
                    GetResult::NotFound => Ok(js_sys::Array::new().into()),
                    GetResult::TimedOut => Err(timeout()),
                    GetResult::NoRoute => Err(no_route()),
                },
            ),
        };
        if let Some(at) = self.store_ops.iter().position(|(id, _, _)| *id == op.0) {
            let (_, resolve, reject) = self.store_ops.swap_remove(at);
            match settle {
                Ok(v) => self.settle.push((resolve, v)),
                Err(e) => self.settle.push((reject, e)),
            }
        }
    }
}

// ---- the exported provider ----

/// The node in the browser (wrapped by `Provider` in TypeScript).
#[wasm_bindgen]
pub struct WasmProvider {
    inner: Shared,
}

#[wasm_bindgen]
impl WasmProvider {
    /// `seed`: 32 bytes from `crypto.getRandomValues`; `ice_servers`: RTCIceServer
    /// objects (none needed on one machine); `on_event`: called with `{type, …}` objects.
    #[wasm_bindgen(constructor)]
    pub fn new(
        session: &WasmSession,
        seed: &[u8],
        ice_servers: js_sys::Array,
        connect_timeout_ms: u32,
        max_connections: u32,
        ring_candidate_wait_ms: u32,
        on_event: js_sys::Function,
    ) -> Result<WasmProvider, JsValue> {
        let seed: [u8; 32] = seed.try_into().map_err(|_| js_error("BAD_ARGUMENT", "seed must be 32 random bytes"))?;
        for s in ice_servers.iter() {
            if s.dyn_ref::<RtcIceServer>().is_none() && !s.is_object() {
                return Err(js_error("BAD_ARGUMENT", "iceServers must be RTCIceServer objects"));
            }
        }
        let network = session.0.delegation().network;
        let mut cfg = NodeConfig::default();
        cfg.wire.network = network;
        // A data channel buffers far more than the simulator's links: keep LINK_WINDOW
        // bytes in flight beyond LOW_WATER, so the link never waits on the sealing of
        // the next message.
        cfg.wire.link_window = LINK_WINDOW;
        // A ring request can wait behind megabytes of data in the same ordered channel;
        // dead links are noticed by WebRTC itself (channel close, connection state).
        cfg.ring.hop_timeout = RING_HOP_TIMEOUT;
        let max_links = max_connections.max(2) as usize;
        let d = LinkConfig::default();
        cfg.links = Some(LinkConfig {
            max_links,
            max_by_peers: (max_links / 2).max(1),
            max_answering: d.max_answering.min(max_links),
            connect_timeout: Duration::from_millis(u64::from(connect_timeout_ms.max(1000))),
            low_water: LOW_WATER as usize,
            ..d
        });
        let node =
            Node::new(Identity::Session(session.0.clone()), cfg, seed, now()).map_err(|e| js_error("BAD_ARGUMENT", format!("{e:?}")))?;
        let mut rng_seed = seed;
        rng_seed[0] ^= 0x5a; // a stream apart from the node's
        let inner = Rc::new_cyclic(|me: &Weak<RefCell<Inner>>| {
            let w = me.clone();
            RefCell::new(Inner {
                node,
                session: session.clone(),
                network,
                ice_servers,
                ring_grace: (ring_candidate_wait_ms > 0).then_some(ring_candidate_wait_ms.min(GATHER_LIMIT_MS as u32) as i32),
                rng: ChaCha20Rng::from_seed(rng_seed),
                conns: HashMap::new(),
                retiring: Vec::new(),
                describing: HashMap::new(),
                manual_offers: Vec::new(),
                opening: Vec::new(),
                on_event,
                out: Vec::new(),
                settle: Vec::new(),
                store_ops: Vec::new(),
                timer: None,
                timer_cb: Some(Closure::new(move || with(&w, |i| i.on_timer()))),
                closed: false,
                me: me.clone(),
            })
        });
        with(&Rc::downgrade(&inner), |_| {});
        Ok(WasmProvider { inner })
    }

    #[wasm_bindgen(getter)]
    pub fn did(&self) -> String {
        self.inner.borrow().node.did().to_checksum()
    }

    /// A signed offer for a manual handshake (copy-paste, QR, HTTP …): `Promise<string>`.
    #[wasm_bindgen(js_name = createOffer)]
    pub fn create_offer(&self) -> js_sys::Promise {
        super::manual::create_offer(self.inner.clone())
    }

    /// Answers a peer's offer: `Promise<string>` (the signed answer to send back).
    #[wasm_bindgen(js_name = answerOffer)]
    pub fn answer_offer(&self, offer: String) -> js_sys::Promise {
        super::manual::answer_offer(self.inner.clone(), offer)
    }

    /// Takes the answer to our offer: `Promise<string>`, the peer's DID once the link is
    /// open (this node then joins the ring through it if it is alone).
    #[wasm_bindgen(js_name = acceptAnswer)]
    pub fn accept_answer(&self, answer: String) -> js_sys::Promise {
        super::manual::accept_answer(self.inner.clone(), answer)
    }

    /// Opens a link to `did`, signalled through the ring: `Promise<void>`, once it is open.
    pub fn connect(&self, did: String) -> js_sys::Promise {
        super::manual::connect(self.inner.clone(), did)
    }

    /// Closes the link to `did` (the ring will route around it).
    pub fn disconnect(&self, did: String) -> Result<(), JsValue> {
        let peer = parse_did(&did)?;
        with(&Rc::downgrade(&self.inner), |i| i.node.disconnect(now(), peer));
        Ok(())
    }

    /// DIDs with an open link.
    pub fn peers(&self) -> Vec<String> {
        let i = self.inner.borrow();
        let mut v: Vec<String> = i.node.links().into_iter().flat_map(|l| l.open_peers()).map(Did::to_checksum).collect();
        v.sort();
        v
    }

    /// `{did, joined, successor, predecessor, successors, fingers, connections, pending, stats}`.
    pub fn info(&self) -> JsValue {
        let i = self.inner.borrow();
        let r = i.node.ring();
        let list = |v: &mut dyn Iterator<Item = Did>| -> JsValue { v.map(did_js).collect::<js_sys::Array>().into() };
        let w = i.node.wire().stats();
        let (open, held, (waiting, outstanding), (trickled, received)) = match i.node.links() {
            Some(l) => (l.open_peers().count(), l.len(), l.backlog(), l.candidates()),
            None => (0, 0, (0, 0), (0, 0)),
        };
        let n = |v: f64| JsValue::from(v);
        let stats = object(&[
            ("messagesSent", n(w.messages_sent as f64)),
            ("messagesDelivered", n(w.messages_delivered as f64)),
            ("framesRelayed", n(w.frames_relayed as f64)),
            ("rejected", n(w.rejected_total() as f64)),
            ("ringMalformed", n(r.stats().malformed as f64)),
            ("queuedBytes", n(i.node.wire().backlog().0 as f64)),
            ("outboxMessages", n(i.node.wire().backlog().1 as f64)),
            ("waitingBytes", n(waiting as f64)),
            ("outstandingBytes", n(outstanding as f64)),
            ("candidatesTrickled", n(trickled as f64)),
            ("candidatesReceived", n(received as f64)),
            ("signalsInFlight", n(i.node.signals_in_flight() as f64)),
            ("bufferedBytes", n(i.conns.values().map(|c| c.rtc.dc.buffered_amount() as f64).sum())),
        ]);
        let info = object(&[
            ("did", did_js(i.node.did())),
            ("joined", (r.is_joined() && r.successor().is_some()).into()),
            ("successor", r.successor().map_or(JsValue::NULL, did_js)),
            ("predecessor", r.predecessor().map_or(JsValue::NULL, did_js)),
            ("successors", list(&mut r.table().successors().iter().copied())),
            ("fingers", list(&mut r.table().finger_nodes())),
            ("connections", (open as u32).into()),
            ("pending", (held.saturating_sub(open) as u32).into()),
            ("stats", stats),
        ]);
        info
    }

    /// Sends application bytes to `did`, signed and end-to-end encrypted, through the
    /// ring. Returns the transaction id named by a later `undelivered` event.
    pub fn send(&self, did: String, data: &[u8]) -> Result<u64, JsValue> {
        let peer = parse_did(&did)?;
        let mut result = Err(js_error("CLOSED", "provider closed"));
        with(&Rc::downgrade(&self.inner), |i| {
            result = i.node.send_from(now(), peer, data).map_err(|e| match e {
                SendError::TooLarge { max, .. } => js_error("TOO_LARGE", format!("message over {max} bytes")),
                SendError::QueueFull => js_error("BUSY", "too many messages waiting for this peer's session"),
                SendError::NoSession => js_error("CLOSED", "no session"),
            });
        });
        result
    }

    /// Writes `value` at `key` (stored at sha1 of the key) for `ttlMs`, as this
    /// provider's account: a single value (`set` false; only its writer may overwrite
    /// it) or this account's entry in an append-set. `keep`: rewrite it while the
    /// provider lives. Resolves once the key's owner has stored it.
    #[wasm_bindgen(js_name = storePut)]
    pub fn store_put(&self, key: &[u8], set: bool, value: &[u8], ttl_ms: f64, keep: bool) -> js_sys::Promise {
        let ring_key = Record::key_of(key);
        let kind = if set { RecordKind::Set } else { RecordKind::Value };
        let value = value.to_vec();
        self.store_op(move |i| {
            if !(ttl_ms.is_finite() && ttl_ms >= 1.0) {
                return Err(js_error("BAD_ARGUMENT", "ttlMs must be a positive number"));
            }
            let ttl = Duration(ttl_ms as u64);
            let t = now();
            let r = if keep { i.node.publish(t, ring_key, kind, value, ttl) } else { i.node.put(t, ring_key, kind, value, ttl) };
            r.map_err(store_error)
        })
    }

    /// The live records at `key`: `[{writer, value, version, expiresAt, kind}]` (empty if
    /// none), checked against their writers' signatures.
    #[wasm_bindgen(js_name = storeGet)]
    pub fn store_get(&self, key: &[u8]) -> js_sys::Promise {
        let ring_key = Record::key_of(key);
        self.store_op(move |i| Ok(i.node.get(now(), ring_key)))
    }

    /// Stops rewriting a record kept by `storePut(…, keep)`.
    #[wasm_bindgen(js_name = storeForget)]
    pub fn store_forget(&self, key: &[u8], set: bool) {
        let kind = if set { RecordKind::Set } else { RecordKind::Value };
        with(&Rc::downgrade(&self.inner), |i| i.node.unpublish(Record::key_of(key), kind));
    }

    fn store_op(&self, start: impl FnOnce(&mut Inner) -> Result<crate::store::OpId, JsValue>) -> js_sys::Promise {
        let mut slot = None;
        let promise = js_sys::Promise::new(&mut |resolve, reject| slot = Some((resolve, reject)));
        let Some((resolve, reject)) = slot else { return promise };
        let mut failed = Some(js_error("CLOSED", "provider closed"));
        with(&Rc::downgrade(&self.inner), |i| match start(i) {
            Ok(op) => {
                i.store_ops.push((op.0, resolve.clone(), reject.clone()));
                failed = None;
            }
            Err(e) => failed = Some(e),
        });
        if let Some(e) = failed {
            let _ = reject.call1(&JsValue::UNDEFINED, &e);
        }
        promise
    }

    /// Leaves the ring and closes every connection. Idempotent.
    pub fn close(&self) {
        let settle = {
            let Ok(mut i) = self.inner.try_borrow_mut() else {
                return;
            };
            if i.closed {
                return;
            }
            i.node.leave(now());
            i.pump(); // hand the goodbye messages to the channels
            let closed = || js_error("CLOSED", "provider closed");
            for (_, ((_, reject), _)) in i.describing.drain().collect::<Vec<_>>() {
                i.settle.push((reject, closed()));
            }
            i.node.close_links(now());
            i.pump();
            i.conns.clear();
            i.retiring.clear();
            if let Some(t) = i.timer.take() {
                clear_timeout(&t);
            }
            i.timer_cb = None;
            i.closed = true;
            let mut rejects: Vec<js_sys::Function> = i.store_ops.drain(..).map(|(_, _, reject)| reject).collect();
            rejects.extend(i.opening.drain(..).map(|(_, (_, reject))| reject));
            rejects.extend(i.describing.drain().map(|(_, ((_, reject), _))| reject));
            let mut settle = std::mem::take(&mut i.settle);
            settle.extend(rejects.into_iter().map(|r| (r, closed())));
            settle
        };
        for (f, v) in settle {
            let _ = f.call1(&JsValue::UNDEFINED, &v);
        }
    }
}

fn store_error(e: StoreError) -> JsValue {
    let code = match e {
        StoreError::BadSignature | StoreError::BadDelegation => "BAD_SIGNATURE",
        StoreError::Stale => "STALE",
        StoreError::NotOwner => "NOT_OWNER",
        StoreError::TooLarge => "TOO_LARGE",
        StoreError::Full => "BUSY",
        StoreError::NoSession => "CLOSED",
        StoreError::Unreplicated => "TIMEOUT",
        StoreError::NotReplica => "UNDELIVERED",
        _ => "BAD_ARGUMENT",
    };
    js_error(code, e)
}

/// `{writer, value, version, expiresAt, kind}` for JS.
fn record_js(r: &Record) -> JsValue {
    object(&[
        ("writer", did_js(r.writer)),
        ("value", js_sys::Uint8Array::from(r.value.as_slice()).into()),
        ("version", (r.version as f64).into()),
        ("expiresAt", (r.expires_at as f64).into()),
        ("kind", if r.kind == RecordKind::Set { "set" } else { "value" }.into()),
    ])
}
