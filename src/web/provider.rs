//! The WebRTC driver: one [`Node`] driven by the browser's event loop.
//!
//! - One ordered, reliable, pre-negotiated (id 0) binary data channel per peer.
//! - Offers and answers are sent as soon as the first host candidate is in hand (a short
//!   grace after it, or gathering complete, whichever is first), not after full gathering.
//! - Manual bootstrap: `createOffer` / `answerOffer` / `acceptAnswer` with signed text.
//!   Every other link is signalled through the ring: the offer and answer travel as
//!   routed, signed, end-to-end encrypted messages. Glare: the smaller DID yields.
//! - Frames for a peer without a link wait (bounded) while the link is opened through the
//!   ring; a link that does not open in time is reported down to the core.
//! - Flow control on `bufferedAmount`: routed-frame credit is returned to the core as the
//!   channel drains (`bufferedamountlow`).
//! - Every JS callback is a `Closure` owned by its connection, unset and dropped when the
//!   connection goes. Events reach JS only after the driver's state is released, so a
//!   handler may call back into the provider.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelInit, RtcDataChannelType, RtcIceServer, RtcPeerConnection,
    RtcPeerConnectionIceEvent, RtcPeerConnectionState, RtcSdpType, RtcSessionDescriptionInit,
};

use super::session::WasmSession;
use super::{js_error, parse_did};
use crate::chord;
use crate::node::{Event, Identity, Node, NodeConfig};
use crate::signal::{Signal, SignalKind};
use crate::store::{GetResult, PutError, Record, RecordKind, StoreError, StoreEvent};
use crate::time::{Duration, Instant};
use crate::wire::SendError;
use crate::Did;

/// First byte of a routed message body: application data, or a connection signal.
const APP: u8 = 0;
const SIGNAL: u8 = 1;
/// A late ICE candidate for a link being signalled through the ring.
const CANDIDATE: u8 = 2;
/// Candidates kept for a connection whose remote description is not set yet.
const MAX_EARLY_CANDIDATES: usize = 32;
/// Bytes waiting for one peer's link to open before they are dropped.
const MAX_WAITING: usize = 8 << 20;
/// Channel bytes above which routed-frame credit is withheld: deep enough that the link
/// keeps sending while the next message is sealed (1 MiB takes ~7 ms in wasm).
const LOW_WATER: u32 = 1 << 20;
/// The ring's patience with a peer's answer (the simulator's default is 500 ms).
const RING_HOP_TIMEOUT: Duration = Duration::from_millis(2000);
/// A link younger than this is not closed to make room for another.
const LINK_GRACE: Duration = Duration::from_millis(5000);
/// An open link silent this long is closed when the ring finds the peer unreachable.
const PEER_SILENCE: Duration = Duration::from_millis(3000);
/// Routed-frame bytes handed to one channel beyond LOW_WATER (Chromium accepts 16 MiB).
const LINK_WINDOW: usize = 3 << 20;
/// Oldest signal accepted through the ring, and over a manual channel (a human may
/// carry that one; our own manual offer waits as long).
const SIGNAL_MAX_AGE: Duration = Duration::from_secs(120);
const MANUAL_SIGNAL_MAX_AGE: Duration = Duration::from_secs(600);
/// After the first ICE candidate, how long to wait for more before sending the SDP.
const CANDIDATE_GRACE_MS: i32 = 15;
const GATHER_LIMIT_MS: i32 = 1500;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(f: &js_sys::Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

fn now() -> Instant {
    Instant(js_sys::Date::now() as u64)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Our offer is out (manual or through the ring); `digest` names it.
    Offering {
        digest: Option<[u8; 32]>,
    },
    /// We answered their offer; waiting for the channel.
    Answering,
    Open,
}

/// A peer connection and a promise that resolves when the driver closes it. Every wait on
/// the connection races that promise: a closed `RTCPeerConnection` never settles the
/// operations it had pending, and a task left waiting on one would keep the connection
/// (and the task) reachable forever — the leak behind Chromium's "Cannot create so many
/// PeerConnections".
#[derive(Clone)]
struct Rtc {
    pc: RtcPeerConnection,
    closed: js_sys::Promise,
}

/// What a wait on a closed connection resolves to.
const CLOSED: &str = "rings:connection-closed";

impl core::ops::Deref for Rtc {
    type Target = RtcPeerConnection;
    fn deref(&self) -> &RtcPeerConnection {
        &self.pc
    }
}

impl Rtc {
    /// The connection and the function that closes its waits.
    fn new(pc: RtcPeerConnection) -> (Rtc, js_sys::Function) {
        let mut close = None;
        let closed = js_sys::Promise::new(&mut |resolve, _| close = Some(resolve));
        // The executor runs synchronously: `close` is set.
        (Rtc { pc, closed }, close.unwrap_or_else(|| js_sys::Function::new_no_args("")))
    }

    /// Waits for `op`, or fails once the connection is closed.
    async fn wait(&self, op: js_sys::Promise) -> Result<JsValue, JsValue> {
        let v = JsFuture::from(js_sys::Promise::race(&js_sys::Array::of2(&op, &self.closed))).await?;
        if v.as_string().as_deref() == Some(CLOSED) {
            return Err(js_error("CLOSED", "connection closed"));
        }
        Ok(v)
    }
}

/// A candidate gathered after the offer or answer left, sent through the ring.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Trickle {
    /// The offer whose negotiation it belongs to.
    #[serde(with = "crate::byte_array")]
    digest: [u8; 32],
    candidate: String,
    mid: Option<String>,
    mline: Option<u16>,
}

struct Conn {
    peer: Option<Did>,
    pc: Rtc,
    /// Settles the waits on `pc` (see [`Rtc`]).
    close_waits: js_sys::Function,
    dc: RtcDataChannel,
    state: State,
    deadline: Instant,
    /// When the last frame arrived on this connection.
    last_rx: Instant,
    /// When a frame last crossed it either way (for least-recently-used eviction).
    last_used: Instant,
    /// When the channel opened (a young link is not evicted).
    opened: Instant,
    /// The digest of the offer this connection negotiates, once signalled through the
    /// ring: late candidates name it.
    negotiation: Option<[u8; 32]>,
    /// The remote description is set, so candidates can be added.
    remote_set: bool,
    /// Candidates that arrived before the remote description.
    early: Vec<Trickle>,
    /// Our candidates gathered before the offer or answer left.
    local_early: Vec<web_sys::RtcIceCandidate>,
    /// Forwards late local candidates through the ring until the channel opens.
    trickle: Option<Closure<dyn FnMut(RtcPeerConnectionIceEvent)>>,
    /// Frames waiting for the channel to open.
    waiting: VecDeque<Vec<u8>>,
    waiting_bytes: usize,
    /// Routed bytes handed to the channel whose credit is not yet returned.
    outstanding: usize,
    /// `connect()` / `acceptAnswer()` promises to settle when the channel opens or fails.
    waiters: Vec<(js_sys::Function, js_sys::Function)>,
    /// True if we opened it manually and must join the ring through it.
    join_via: bool,
    _callbacks: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl Conn {
    fn shut(&mut self) {
        self.pc.set_onconnectionstatechange(None);
        self.pc.set_onicecandidate(None);
        self.trickle = None;
        self.dc.set_onopen(None);
        self.dc.set_onclose(None);
        self.dc.set_onmessage(None);
        self.dc.set_onbufferedamountlow(None);
        self.dc.close();
        self.pc.close();
        let _ = self.close_waits.call1(&JsValue::UNDEFINED, &CLOSED.into());
    }
}

pub(crate) struct Inner {
    node: Node,
    session: WasmSession,
    network: u32,
    ice_servers: js_sys::Array,
    connect_timeout: Duration,
    /// Open and opening connections allowed (see [`Inner::make_room`]).
    max_conns: usize,
    /// How long a ring-signalled offer or answer waits after its first candidate
    /// (`None`: not at all; every candidate then trickles through the ring).
    ring_grace: Option<i32>,
    rng: ChaCha20Rng,
    conns: HashMap<u64, Conn>,
    by_did: HashMap<Did, u64>,
    next_conn: u64,
    /// Transaction ids of signals we sent through the ring, by peer.
    signal_tx: HashMap<u64, Did>,
    on_event: js_sys::Function,
    /// Events for JS, delivered once the state is released.
    out: Vec<JsValue>,
    /// Promise settlements, run once the state is released.
    settle: Vec<(js_sys::Function, JsValue)>,
    /// `put` / `get` promises by store operation.
    store_ops: Vec<(u64, js_sys::Function, js_sys::Function)>,
    /// Late candidates sent and taken through the ring.
    trickled_out: u64,
    trickled_in: u64,
    timer: Option<JsValue>,
    timer_cb: Option<Closure<dyn FnMut()>>,
    closed: bool,
    me: Weak<RefCell<Inner>>,
}

type Shared = Rc<RefCell<Inner>>;

/// Runs `f` on the driver state, drives the node, then (state released) delivers events
/// and settles promises.
fn with(weak: &Weak<RefCell<Inner>>, f: impl FnOnce(&mut Inner)) {
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

impl Inner {
    // ---- the run loop ----

    /// Drains the node until it is quiet: transmits to channels, events to JS, credit
    /// back from drained channels; then sets the timer.
    fn pump(&mut self) {
        loop {
            let mut work = false;
            while let Some(t) = self.node.poll_transmit() {
                work = true;
                self.transmit(t.to, t.frame.encode());
            }
            while let Some(e) = self.node.poll_event() {
                work = true;
                self.on_node_event(e);
            }
            work |= self.return_credit();
            if !work {
                break;
            }
        }
        self.schedule();
    }

    fn transmit(&mut self, to: Did, bytes: Vec<u8>) {
        let id = match self.by_did.get(&to) {
            Some(id) => *id,
            None => match self.open_through_ring(to) {
                Some(id) => id,
                None => return,
            },
        };
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.state != State::Open {
            if c.waiting_bytes + bytes.len() > MAX_WAITING {
                return; // the core's timeouts and error reports cover what is dropped
            }
            c.waiting_bytes += bytes.len();
            c.waiting.push_back(bytes);
            return;
        }
        c.last_used = now();
        if c.dc.send_with_u8_array(&bytes).is_err() {
            self.drop_conn(id, "send failed");
            return;
        }
        // Only routed frames draw on the core's link credit.
        if bytes.first() == Some(&crate::wire::ROUTED_TAG) {
            c.outstanding += bytes.len();
        }
    }

    /// Returns routed-frame credit for what the channels have drained.
    fn return_credit(&mut self) -> bool {
        let mut drained = Vec::new();
        for c in self.conns.values_mut() {
            if c.outstanding == 0 || c.state != State::Open {
                continue;
            }
            let held = c.dc.buffered_amount().saturating_sub(LOW_WATER) as usize;
            let back = c.outstanding.saturating_sub(held);
            if back > 0 {
                c.outstanding -= back;
                if let Some(p) = c.peer {
                    drained.push((p, back));
                }
            }
        }
        let any = !drained.is_empty();
        for (p, n) in drained {
            self.node.handle_sent(now(), p, n);
        }
        any
    }

    fn schedule(&mut self) {
        let mut wake = self.node.poll_timeout();
        for c in self.conns.values() {
            if c.state != State::Open {
                wake = Some(wake.map_or(c.deadline, |w| w.min(c.deadline)));
            }
        }
        if let Some(t) = self.timer.take() {
            clear_timeout(&t);
        }
        let (Some(wake), Some(cb)) = (wake, self.timer_cb.as_ref()) else {
            return;
        };
        let delay = wake.0.saturating_sub(now().0).min(i32::MAX as u64) as i32;
        self.timer = Some(set_timeout(cb.as_ref().unchecked_ref(), delay));
    }

    fn on_timer(&mut self) {
        self.timer = None;
        let t = now();
        let late: Vec<u64> = self.conns.iter().filter(|(_, c)| c.state != State::Open && c.deadline <= t).map(|(id, _)| *id).collect();
        for id in late {
            self.drop_conn(id, "connection timed out");
        }
        // Links kept over the cap while young go once they are old.
        self.make_room(self.max_conns);
        self.node.handle_timeout(t);
    }

    fn on_node_event(&mut self, e: Event) {
        match e {
            Event::Message(d) => match d.body.split_first() {
                Some((&APP, data)) => {
                    let data = js_sys::Uint8Array::from(data);
                    self.out.push(event("message", &[("from", did_js(d.from)), ("data", data.into()), ("hops", d.hops.into())]));
                }
                Some((&SIGNAL, sig)) => self.on_ring_signal(d.from, sig),
                Some((&CANDIDATE, t)) => self.on_ring_candidate(d.from, t),
                _ => {}
            },
            Event::Undelivered(u) => {
                if self.signal_tx.remove(&u.tx).is_some() {
                    if let Some(id) = self.by_did.get(&u.dest).copied() {
                        self.drop_conn(id, "signal undeliverable");
                    }
                    return;
                }
                self.out.push(event(
                    "undelivered",
                    &[("tx", u.tx.into()), ("to", did_js(u.dest)), ("reason", format!("{:?}", u.reason).into())],
                ));
            }
            Event::Store(e) => self.on_store_event(e),
            // Not in link mode, and no acknowledgements asked (yet).
            Event::Link(_) | Event::Acknowledged { .. } => {}
            Event::Ring(r) => match r {
                chord::Event::Joined { .. } => self.out.push(event("joined", &[])),
                chord::Event::JoinFailed { error, .. } => self.out.push(event("joinFailed", &[("reason", format!("{error:?}").into())])),
                chord::Event::SuccessorChanged { .. } | chord::Event::PredecessorChanged { .. } => {
                    let table = self.node.ring();
                    let succ = table.successor().map_or(JsValue::NULL, did_js);
                    let pred = table.predecessor().map_or(JsValue::NULL, did_js);
                    self.out.push(event("ringChanged", &[("successor", succ), ("predecessor", pred)]));
                }
                chord::Event::PeerUnreachable { peer } => {
                    // A link still opening has its own deadline: the ring's requests to
                    // the peer may have timed out only because the link was not up yet.
                    // An open link that delivered frames lately is alive, merely congested:
                    // closing it would lose what is in flight on it.
                    let t = now();
                    let dead = |c: &Conn| c.state == State::Open && c.last_rx + PEER_SILENCE <= t;
                    if let Some(id) = self.by_did.get(&peer).copied().filter(|id| self.conns.get(id).is_some_and(dead)) {
                        self.drop_conn(id, "peer unreachable");
                    }
                }
                _ => {}
            },
        }
    }

    /// Settles the promise of a finished `put` or `get` (renewals have none).
    fn on_store_event(&mut self, e: StoreEvent) {
        let (op, settle) = match e {
            StoreEvent::Put { op, result, .. } => (
                op,
                match result {
                    Ok(()) => Ok(JsValue::UNDEFINED),
                    Err(PutError::Refused(e)) => Err(store_error(e)),
                    Err(PutError::TimedOut) => Err(js_error("TIMEOUT", "the key's owner did not answer in time")),
                    Err(PutError::NoRoute) => Err(js_error("UNDELIVERED", "the key's owner could not be found")),
                },
            ),
            StoreEvent::Get { op, result, .. } => (
                op,
                match result {
                    GetResult::Found(rs) => Ok(rs.iter().map(record_js).collect::<js_sys::Array>().into()),
                    GetResult::NotFound => Ok(js_sys::Array::new().into()),
                    GetResult::TimedOut => Err(js_error("TIMEOUT", "the key's owner did not answer in time")),
                    GetResult::NoRoute => Err(js_error("UNDELIVERED", "the key's owner could not be found")),
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

    // ---- connections ----

    /// Closes least recently used links until at most `limit` remain; never the
    /// ring's successor or predecessor, a link still opening, or one open for less than
    /// [`LINK_GRACE`] (a newcomer needs its bootstrap link while it finds its
    /// neighbours). The cap is soft when nothing else can go.
    fn make_room(&mut self, limit: usize) {
        let t = now();
        while self.conns.len() > limit {
            let ring = self.node.ring();
            let keep = [ring.successor(), ring.predecessor()];
            let lru = self
                .conns
                .iter()
                .filter(|(_, c)| c.state == State::Open && !keep.contains(&c.peer) && c.opened + LINK_GRACE <= t)
                .min_by_key(|(_, c)| c.last_used)
                .map(|(id, _)| *id);
            let Some(id) = lru else { return };
            self.drop_conn(id, "connection limit: least recently used");
        }
    }

    fn new_conn(&mut self, peer: Option<Did>, state: State) -> Result<u64, JsValue> {
        self.make_room(self.max_conns - 1);
        let cfg = RtcConfiguration::new();
        cfg.set_ice_servers(&self.ice_servers);
        let pc = RtcPeerConnection::new_with_configuration(&cfg).map_err(|e| js_error("WEBRTC", format!("{e:?}")))?;
        let init = RtcDataChannelInit::new();
        init.set_negotiated(true);
        init.set_id(0);
        init.set_ordered(true);
        let dc = pc.create_data_channel_with_data_channel_dict("rings", &init);
        dc.set_binary_type(RtcDataChannelType::Arraybuffer);
        dc.set_buffered_amount_low_threshold(LOW_WATER);
        let id = self.next_conn;
        self.next_conn += 1;
        let me = self.me.clone();
        let mut callbacks: Vec<Closure<dyn FnMut(JsValue)>> = Vec::new();
        let w = me.clone();
        callbacks.push(Closure::new(move |_| with(&w, |i| i.on_open(id))));
        dc.set_onopen(Some(callbacks[0].as_ref().unchecked_ref()));
        let w = me.clone();
        callbacks.push(Closure::new(move |_| with(&w, |i| i.drop_conn(id, "channel closed"))));
        dc.set_onclose(Some(callbacks[1].as_ref().unchecked_ref()));
        let w = me.clone();
        callbacks.push(Closure::new(move |e: JsValue| {
            let Ok(m) = e.dyn_into::<MessageEvent>() else {
                return;
            };
            let Ok(buf) = m.data().dyn_into::<js_sys::ArrayBuffer>() else {
                return;
            };
            let bytes = js_sys::Uint8Array::new(&buf).to_vec();
            with(&w, |i| i.on_frame(id, &bytes));
        }));
        dc.set_onmessage(Some(callbacks[2].as_ref().unchecked_ref()));
        let w = me.clone();
        callbacks.push(Closure::new(move |_| with(&w, |_| {})));
        dc.set_onbufferedamountlow(Some(callbacks[3].as_ref().unchecked_ref()));
        let w = me;
        let pc2 = pc.clone();
        callbacks.push(Closure::new(move |_| {
            if matches!(
                pc2.connection_state(),
                RtcPeerConnectionState::Failed | RtcPeerConnectionState::Closed | RtcPeerConnectionState::Disconnected
            ) {
                with(&w, |i| i.drop_conn(id, "connection lost"));
            }
        }));
        pc.set_onconnectionstatechange(Some(callbacks[4].as_ref().unchecked_ref()));
        let deadline = now() + self.connect_timeout;
        let (pc, close_waits) = Rtc::new(pc);
        let conn = Conn {
            peer,
            pc,
            close_waits,
            dc,
            state,
            deadline,
            last_rx: now(),
            last_used: now(),
            opened: now(),
            negotiation: None,
            remote_set: false,
            early: Vec::new(),
            local_early: Vec::new(),
            trickle: None,
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            outstanding: 0,
            waiters: Vec::new(),
            join_via: false,
            _callbacks: callbacks,
        };
        self.conns.insert(id, conn);
        if let Some(p) = peer {
            self.by_did.insert(p, id);
        }
        Ok(id)
    }

    fn on_open(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let Some(peer) = c.peer else { return };
        c.state = State::Open;
        c.opened = now();
        if c.trickle.take().is_some() {
            c.pc.set_onicecandidate(None);
        }
        let waiting: Vec<Vec<u8>> = c.waiting.drain(..).collect();
        c.waiting_bytes = 0;
        for (resolve, _) in c.waiters.drain(..) {
            self.settle.push((resolve, did_js(peer)));
        }
        let join = std::mem::take(&mut c.join_via);
        self.node.handle_peer_up(peer);
        // The signals that opened this link can no longer be reported undelivered.
        self.signal_tx.retain(|_, p| *p != peer);
        for bytes in waiting {
            self.transmit(peer, bytes);
        }
        self.out.push(event("peerUp", &[("did", did_js(peer))]));
        if join && self.node.ring().successor().is_none() {
            self.node.join(now(), peer);
        }
    }

    fn on_frame(&mut self, id: u64, bytes: &[u8]) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.last_rx = now();
        c.last_used = c.last_rx;
        let Some(peer) = c.peer else {
            return;
        };
        // A bad frame is counted by the core; nothing else to do.
        let _ = self.node.handle_frame(now(), peer, bytes);
    }

    fn drop_conn(&mut self, id: u64, why: &str) {
        let Some(mut c) = self.conns.remove(&id) else {
            return;
        };
        c.shut();
        for (_, reject) in c.waiters.drain(..) {
            self.settle.push((reject, js_error("CONNECT_FAILED", why)));
        }
        if let Some(p) = c.peer {
            if self.by_did.get(&p) == Some(&id) {
                self.by_did.remove(&p);
                // Its signals may have been delivered (never reported undelivered).
                self.signal_tx.retain(|_, q| *q != p);
                self.node.handle_peer_down(now(), p);
                if c.state == State::Open {
                    self.out.push(event("peerDown", &[("did", did_js(p)), ("reason", why.into())]));
                }
            }
        }
    }

    /// Starts a link to `peer` signalled through the ring; `None` if it cannot start.
    fn open_through_ring(&mut self, peer: Did) -> Option<u64> {
        // With no open link there is no ring to carry the offer.
        if peer == self.node.did() || self.closed || !self.conns.values().any(|c| c.state == State::Open) {
            return None;
        }
        let id = self.new_conn(Some(peer), State::Offering { digest: None }).ok()?;
        let (pc, me, grace) = (self.conns[&id].pc.clone(), self.me.clone(), self.ring_grace);
        if grace.is_none() {
            self.forward_candidates(id); // every candidate will trickle
        }
        wasm_bindgen_futures::spawn_local(async move {
            let sdp = local_sdp(&pc, true, grace).await;
            with(&me, |i| match sdp {
                Ok(sdp) => i.send_signal(id, peer, SignalKind::Offer, sdp),
                Err(e) => i.drop_conn(id, &format!("offer failed: {e:?}")),
            });
        });
        Some(id)
    }

    /// Signs `sdp` as this node; an offer is recorded on connection `id`, so only the
    /// answer to it is taken.
    fn sign_signal(&mut self, id: u64, kind: SignalKind, sdp: String) -> Signal {
        let nonce = self.rng.next_u64();
        let signal = Signal::new(&self.session.0, kind, sdp, now(), nonce);
        if let (SignalKind::Offer, Some(c)) = (kind, self.conns.get_mut(&id)) {
            c.state = State::Offering { digest: Some(signal.digest()) };
        }
        signal
    }

    fn send_signal(&mut self, id: u64, peer: Did, kind: SignalKind, sdp: String) {
        let signal = self.sign_signal(id, kind, sdp);
        let mut body = vec![SIGNAL];
        body.extend_from_slice(&signal.encode());
        match self.node.send(now(), peer, body) {
            Ok(tx) => {
                self.signal_tx.insert(tx, peer);
                let (digest, answered) = match kind {
                    SignalKind::Offer => (signal.digest(), false),
                    SignalKind::Answer(d) => (d, true),
                };
                self.start_trickle(id, digest, answered);
            }
            Err(_) => self.drop_conn(id, "cannot route the signal"),
        }
    }

    /// From now on, candidates this connection gathers follow its offer or answer
    /// through the ring (the SDP left with the first ones).
    fn start_trickle(&mut self, id: u64, digest: [u8; 32], remote_set: bool) {
        self.forward_candidates(id);
        let Some(c) = self.conns.get_mut(&id) else { return };
        c.negotiation = Some(digest);
        c.remote_set |= remote_set;
        for cand in std::mem::take(&mut c.local_early) {
            self.send_candidate(id, &cand);
        }
    }

    /// Installs the handler that sends this connection's candidates through the ring
    /// (held until its offer or answer has left).
    fn forward_candidates(&mut self, id: u64) {
        let w = self.me.clone();
        let Some(c) = self.conns.get_mut(&id) else { return };
        if c.trickle.is_some() {
            return;
        }
        let forward: Closure<dyn FnMut(RtcPeerConnectionIceEvent)> =
            Closure::new(move |e: RtcPeerConnectionIceEvent| with(&w, |i| i.on_local_candidate(id, e)));
        c.pc.set_onicecandidate(Some(forward.as_ref().unchecked_ref()));
        c.trickle = Some(forward);
    }

    fn on_local_candidate(&mut self, id: u64, e: RtcPeerConnectionIceEvent) {
        let Some(cand) = e.candidate() else { return };
        let Some(c) = self.conns.get_mut(&id) else { return };
        if c.negotiation.is_none() {
            if c.local_early.len() < MAX_EARLY_CANDIDATES {
                c.local_early.push(cand);
            }
            return;
        }
        self.send_candidate(id, &cand);
    }

    fn send_candidate(&mut self, id: u64, cand: &web_sys::RtcIceCandidate) {
        let Some(c) = self.conns.get(&id) else { return };
        let (Some(peer), Some(digest)) = (c.peer, c.negotiation) else { return };
        if c.state == State::Open {
            return;
        }
        let t = Trickle { digest, candidate: cand.candidate(), mid: cand.sdp_mid(), mline: cand.sdp_m_line_index() };
        let mut body = vec![CANDIDATE];
        body.extend(postcard::to_allocvec(&t).unwrap_or_default());
        if self.node.send(now(), peer, body).is_ok() {
            self.trickled_out += 1;
        }
    }

    fn on_ring_candidate(&mut self, from: Did, bytes: &[u8]) {
        let Ok(t) = postcard::from_bytes::<Trickle>(bytes) else { return };
        let Some(c) = self.by_did.get(&from).and_then(|id| self.conns.get_mut(id)) else { return };
        if c.negotiation != Some(t.digest) || c.state == State::Open {
            return;
        }
        self.trickled_in += 1;
        if c.remote_set {
            add_candidate(&c.pc, &t);
        } else if c.early.len() < MAX_EARLY_CANDIDATES {
            c.early.push(t);
        }
    }

    /// The remote description is set: candidates that came before it can be added.
    fn remote_description_set(&mut self, id: u64) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.remote_set = true;
            for t in std::mem::take(&mut c.early) {
                add_candidate(&c.pc, &t);
            }
        }
    }

    fn on_ring_signal(&mut self, from: Did, bytes: &[u8]) {
        let Ok(signal) = Signal::decode(bytes) else {
            return;
        };
        let skew = self.node.wire().config().skew;
        match signal.verify(self.network, now(), SIGNAL_MAX_AGE, skew) {
            Ok(d) if d == from => {}
            _ => return,
        }
        match signal.kind {
            SignalKind::Offer => {
                // Who waits for a link to `from` (a `connect`) waits for the one that wins.
                let mut waiters = Vec::new();
                if let Some(&id) = self.by_did.get(&from) {
                    let ours = matches!(self.conns.get(&id).map(|c| c.state), Some(State::Offering { .. }));
                    // Glare: both offered. The larger DID's offer wins.
                    if ours && self.node.did() > from {
                        return;
                    }
                    if let Some(c) = self.conns.get_mut(&id) {
                        waiters = std::mem::take(&mut c.waiters);
                    }
                    self.drop_conn(id, "replaced by the peer's offer");
                }
                let Ok(id) = self.new_conn(Some(from), State::Answering) else {
                    for (_, reject) in waiters {
                        self.settle.push((reject, js_error("CONNECT_FAILED", "no room for the peer's offer")));
                    }
                    return;
                };
                let (pc, me, grace) = (self.conns[&id].pc.clone(), self.me.clone(), self.ring_grace);
                let digest = signal.digest();
                // The offerer's late candidates may come before our answer is made.
                if let Some(c) = self.conns.get_mut(&id) {
                    c.negotiation = Some(digest);
                    c.waiters.extend(waiters);
                }
                if grace.is_none() {
                    self.forward_candidates(id); // every candidate will trickle
                }
                wasm_bindgen_futures::spawn_local(async move {
                    let answer = answer_sdp(&pc, &signal.sdp, grace).await;
                    with(&me, |i| match answer {
                        Ok(sdp) => {
                            i.remote_description_set(id);
                            i.send_signal(id, from, SignalKind::Answer(digest), sdp);
                        }
                        Err(e) => i.drop_conn(id, &format!("answer failed: {e:?}")),
                    });
                });
            }
            SignalKind::Answer(digest) => {
                let Some(&id) = self.by_did.get(&from) else {
                    return;
                };
                let Some(c) = self.conns.get_mut(&id) else {
                    return;
                };
                if c.state != (State::Offering { digest: Some(digest) }) {
                    return;
                }
                c.state = State::Answering;
                let (pc, me) = (c.pc.clone(), self.me.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    match remote(&pc, RtcSdpType::Answer, &signal.sdp).await {
                        Ok(()) => with(&me, |i| i.remote_description_set(id)),
                        Err(e) => with(&me, |i| i.drop_conn(id, &format!("bad answer: {e:?}"))),
                    }
                });
            }
        }
    }
}

// ---- SDP helpers ----

fn add_candidate(pc: &Rtc, t: &Trickle) {
    let init = web_sys::RtcIceCandidateInit::new(&t.candidate);
    init.set_sdp_mid(t.mid.as_deref());
    init.set_sdp_m_line_index(t.mline);
    let (pc, op) = (pc.clone(), pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)));
    // A candidate the browser refuses (or a connection closed meanwhile) costs nothing.
    wasm_bindgen_futures::spawn_local(async move {
        let _ = pc.wait(op).await;
    });
}

async fn remote(pc: &Rtc, kind: RtcSdpType, sdp: &str) -> Result<(), JsValue> {
    let d = RtcSessionDescriptionInit::new(kind);
    d.set_sdp(sdp);
    pc.wait(pc.set_remote_description(&d)).await.map(|_| ())
}

/// Creates the offer (or answer), sets it locally, waits for the first candidates, and
/// returns the local SDP with them.
/// `grace`: how long after the first candidate to wait for more (`None`: not at all — the
/// SDP leaves with whatever is gathered, the rest trickles through the ring).
async fn local_sdp(pc: &Rtc, offer: bool, grace: Option<i32>) -> Result<String, JsValue> {
    let desc = pc.wait(if offer { pc.create_offer() } else { pc.create_answer() }).await?;
    let sdp = js_sys::Reflect::get(&desc, &"sdp".into())?.as_string().unwrap_or_default();
    let init = RtcSessionDescriptionInit::new(if offer { RtcSdpType::Offer } else { RtcSdpType::Answer });
    init.set_sdp(&sdp);
    pc.wait(pc.set_local_description(&init)).await?;
    let Some(grace) = grace else {
        // Every candidate trickles: none travels in the description.
        let sdp = pc.local_description().map(|d| d.sdp()).ok_or_else(|| js_error("WEBRTC", "no local description"))?;
        // Line by line, endings kept (a `split("\r\n")` costs a substring searcher in the wasm).
        return Ok(sdp.split_inclusive('\n').filter(|l| !l.starts_with("a=candidate:") && !l.starts_with("a=end-of-candidates")).collect());
    };
    gathered(pc, grace).await?;
    pc.local_description().map(|d| d.sdp()).ok_or_else(|| js_error("WEBRTC", "no local description"))
}

async fn answer_sdp(pc: &Rtc, offer: &str, grace: Option<i32>) -> Result<String, JsValue> {
    remote(pc, RtcSdpType::Offer, offer).await?;
    local_sdp(pc, false, grace).await
}

/// Resolves shortly after the first ICE candidate, when gathering completes, or after
/// a limit — whichever is first. The handler is unset and dropped afterwards.
async fn gathered(pc: &Rtc, grace: i32) -> Result<(), JsValue> {
    let slot: Rc<RefCell<Option<js_sys::Function>>> = Rc::new(RefCell::new(None));
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        *slot.borrow_mut() = Some(resolve);
    });
    let resolve = slot.borrow().clone();
    let Some(resolve) = resolve else { return Ok(()) };
    let r = resolve.clone();
    let on_candidate: Closure<dyn FnMut(RtcPeerConnectionIceEvent)> =
        Closure::new(move |e: RtcPeerConnectionIceEvent| match e.candidate() {
            Some(_) => {
                let _ = set_timeout(&r, grace);
            }
            None => {
                let _ = r.call0(&JsValue::UNDEFINED);
            }
        });
    pc.set_onicecandidate(Some(on_candidate.as_ref().unchecked_ref()));
    let limit = set_timeout(&resolve, GATHER_LIMIT_MS);
    if pc.ice_gathering_state() == web_sys::RtcIceGatheringState::Complete {
        let _ = resolve.call0(&JsValue::UNDEFINED);
    }
    let done = pc.wait(promise).await;
    clear_timeout(&limit);
    pc.set_onicecandidate(None);
    drop(on_candidate);
    done.map(|_| ())
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
        let mut node =
            Node::new(Identity::Session(session.0.clone()), cfg, seed, now()).map_err(|e| js_error("BAD_ARGUMENT", format!("{e:?}")))?;
        node.require_links();
        let mut rng_seed = seed;
        rng_seed[0] ^= 0x5a; // a stream apart from the node's
        let inner = Rc::new_cyclic(|me: &Weak<RefCell<Inner>>| {
            let w = me.clone();
            RefCell::new(Inner {
                node,
                session: session.clone(),
                network,
                ice_servers,
                connect_timeout: Duration::from_millis(u64::from(connect_timeout_ms.max(1000))),
                max_conns: max_connections.max(2) as usize,
                ring_grace: (ring_candidate_wait_ms > 0).then_some(ring_candidate_wait_ms.min(GATHER_LIMIT_MS as u32) as i32),
                rng: ChaCha20Rng::from_seed(rng_seed),
                conns: HashMap::new(),
                by_did: HashMap::new(),
                next_conn: 1,
                signal_tx: HashMap::new(),
                on_event,
                out: Vec::new(),
                settle: Vec::new(),
                store_ops: Vec::new(),
                trickled_out: 0,
                trickled_in: 0,
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
        let h = Handle(self.inner.clone());
        wasm_bindgen_futures::future_to_promise(async move { h.create_offer().await.map(JsValue::from) })
    }

    /// Answers a peer's offer: `Promise<string>` (the signed answer to send back).
    #[wasm_bindgen(js_name = answerOffer)]
    pub fn answer_offer(&self, offer: String) -> js_sys::Promise {
        let h = Handle(self.inner.clone());
        wasm_bindgen_futures::future_to_promise(async move { h.answer_offer(offer).await.map(JsValue::from) })
    }

    /// Takes the answer to our offer: `Promise<string>`, the peer's DID once the link is
    /// open (this node then joins the ring through it if it is alone).
    #[wasm_bindgen(js_name = acceptAnswer)]
    pub fn accept_answer(&self, answer: String) -> js_sys::Promise {
        let h = Handle(self.inner.clone());
        wasm_bindgen_futures::future_to_promise(async move { h.accept_answer(answer).await.map(JsValue::from) })
    }

    /// Opens a link to `did`, signalled through the ring: `Promise<void>`, once it is open.
    pub fn connect(&self, did: String) -> js_sys::Promise {
        let h = Handle(self.inner.clone());
        wasm_bindgen_futures::future_to_promise(async move { h.connect(did).await.map(|_| JsValue::UNDEFINED) })
    }

    /// Closes the link to `did` (the ring will route around it).
    pub fn disconnect(&self, did: String) -> Result<(), JsValue> {
        let peer = parse_did(&did)?;
        with(&Rc::downgrade(&self.inner), |i| {
            if let Some(id) = i.by_did.get(&peer).copied() {
                i.drop_conn(id, "disconnected");
            }
        });
        Ok(())
    }

    /// DIDs with an open link.
    pub fn peers(&self) -> Vec<String> {
        let i = self.inner.borrow();
        let mut v: Vec<String> = i.conns.values().filter(|c| c.state == State::Open).filter_map(|c| c.peer).map(Did::to_checksum).collect();
        v.sort();
        v
    }

    /// `{did, joined, successor, predecessor, successors, fingers, connections, pending, stats}`.
    pub fn info(&self) -> JsValue {
        let i = self.inner.borrow();
        let r = i.node.ring();
        let list = |v: &mut dyn Iterator<Item = Did>| -> JsValue { v.map(did_js).collect::<js_sys::Array>().into() };
        let w = i.node.wire().stats();
        let rs = r.stats();
        let stats = object(&[
            ("messagesSent", (w.messages_sent as f64).into()),
            ("messagesDelivered", (w.messages_delivered as f64).into()),
            ("framesRelayed", (w.frames_relayed as f64).into()),
            ("rejected", (w.rejected_total() as f64).into()),
            ("ringMalformed", (rs.malformed as f64).into()),
            ("queuedBytes", (i.node.wire().backlog().0 as f64).into()),
            ("outboxMessages", (i.node.wire().backlog().1 as f64).into()),
            ("waitingBytes", (i.conns.values().map(|c| c.waiting_bytes).sum::<usize>() as f64).into()),
            ("outstandingBytes", (i.conns.values().map(|c| c.outstanding).sum::<usize>() as f64).into()),
            ("candidatesTrickled", (i.trickled_out as f64).into()),
            ("candidatesReceived", (i.trickled_in as f64).into()),
            ("signalsInFlight", (i.signal_tx.len() as f64).into()),
            (
                "bufferedBytes",
                (i.conns.values().filter(|c| c.state == State::Open).map(|c| c.dc.buffered_amount()).sum::<u32>() as f64).into(),
            ),
        ]);
        let info = object(&[
            ("did", did_js(i.node.did())),
            ("joined", (r.is_joined() && r.successor().is_some()).into()),
            ("successor", r.successor().map_or(JsValue::NULL, did_js)),
            ("predecessor", r.predecessor().map_or(JsValue::NULL, did_js)),
            ("successors", list(&mut r.table().successors().iter().copied())),
            ("fingers", list(&mut r.table().finger_nodes())),
            ("connections", (i.conns.values().filter(|c| c.state == State::Open).count() as u32).into()),
            ("pending", (i.conns.values().filter(|c| c.state != State::Open).count() as u32).into()),
            ("stats", stats),
        ]);
        info
    }

    /// Sends application bytes to `did`, signed and end-to-end encrypted, through the
    /// ring. Returns the transaction id named by a later `undelivered` event.
    pub fn send(&self, did: String, data: &[u8]) -> Result<u64, JsValue> {
        let peer = parse_did(&did)?;
        let mut body = Vec::with_capacity(data.len() + 1);
        body.push(APP);
        body.extend_from_slice(data);
        let mut result = Err(js_error("CLOSED", "provider closed"));
        with(&Rc::downgrade(&self.inner), |i| {
            result = i.node.send(now(), peer, body).map_err(|e| match e {
                SendError::TooLarge { max, .. } => js_error("TOO_LARGE", format!("message over {} bytes", max - 1)),
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
        let events = {
            let Ok(mut i) = self.inner.try_borrow_mut() else {
                return;
            };
            if i.closed {
                return;
            }
            i.node.leave(now());
            i.pump(); // hand the goodbye messages to the channels
            let ids: Vec<u64> = i.conns.keys().copied().collect();
            for id in ids {
                i.drop_conn(id, "provider closed");
            }
            if let Some(t) = i.timer.take() {
                clear_timeout(&t);
            }
            i.timer_cb = None;
            i.closed = true;
            let ops: Vec<(u64, js_sys::Function, js_sys::Function)> = i.store_ops.drain(..).collect();
            for (_, _, reject) in ops {
                i.settle.push((reject, js_error("CLOSED", "provider closed")));
            }
            std::mem::take(&mut i.settle)
        };
        for (f, v) in events {
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

/// An owned handle for the async operations (their futures must be `'static`).
struct Handle(Shared);

impl Handle {
    /// A signed offer for a manual handshake (copy-paste, QR, HTTP …).
    async fn create_offer(&self) -> Result<String, JsValue> {
        let id = self.borrow_mut()?.new_conn(None, State::Offering { digest: None })?;
        let pc = self.pc(id)?;
        let sdp = local_sdp(&pc, true, Some(CANDIDATE_GRACE_MS)).await;
        let mut i = self.borrow_mut()?;
        let sdp = match sdp {
            Ok(s) => s,
            Err(e) => {
                i.drop_conn(id, "offer failed");
                return Err(e);
            }
        };
        let signal = i.sign_signal(id, SignalKind::Offer, sdp);
        let c = i.conns.get_mut(&id).ok_or_else(|| js_error("CLOSED", "provider closed"))?;
        c.deadline = now() + MANUAL_SIGNAL_MAX_AGE;
        drop(i);
        self.drive();
        Ok(signal.to_text())
    }

    /// Answers a peer's offer; resolves to the signed answer to send back.
    async fn answer_offer(&self, offer: String) -> Result<String, JsValue> {
        let (signal, from) = self.verified(&offer, false)?;
        let id = {
            let mut i = self.borrow_mut()?;
            if from == i.node.did() {
                return Err(js_error("BAD_ARGUMENT", "this is our own offer"));
            }
            if let Some(old) = i.by_did.get(&from).copied() {
                i.drop_conn(old, "replaced by a new offer");
            }
            i.new_conn(Some(from), State::Answering)?
        };
        let pc = self.pc(id)?;
        let sdp = answer_sdp(&pc, &signal.sdp, Some(CANDIDATE_GRACE_MS)).await;
        let mut i = self.borrow_mut()?;
        let sdp = match sdp {
            Ok(s) => s,
            Err(e) => {
                i.drop_conn(id, "answer failed");
                return Err(js_error("BAD_OFFER", format!("{e:?}")));
            }
        };
        let answer = i.sign_signal(id, SignalKind::Answer(signal.digest()), sdp);
        drop(i);
        self.drive();
        Ok(answer.to_text())
    }

    /// Takes the answer to our offer; resolves to the peer's DID once the link is open
    /// (and starts joining the ring through it if this node is alone).
    async fn accept_answer(&self, answer: String) -> Result<String, JsValue> {
        let (signal, from) = self.verified(&answer, true)?;
        let SignalKind::Answer(digest) = signal.kind else {
            return Err(js_error("BAD_ANSWER", "not an answer"));
        };
        let (id, pc) = {
            let mut i = self.borrow_mut()?;
            let found = i.conns.iter().find(|(_, c)| c.peer.is_none() && c.state == State::Offering { digest: Some(digest) });
            let Some((&id, _)) = found else {
                return Err(js_error("BAD_ANSWER", "answer to an offer this provider does not hold"));
            };
            if let Some(old) = i.by_did.get(&from).copied() {
                i.drop_conn(old, "replaced by a manual link");
            }
            let deadline = now() + i.connect_timeout;
            let c = i.conns.get_mut(&id).ok_or_else(|| js_error("CLOSED", "provider closed"))?;
            c.peer = Some(from);
            c.state = State::Answering;
            c.join_via = true;
            c.deadline = deadline;
            let pc = c.pc.clone();
            i.by_did.insert(from, id);
            (id, pc)
        };
        let opened = self.wait_open(id)?;
        if let Err(e) = remote(&pc, RtcSdpType::Answer, &signal.sdp).await {
            with(&Rc::downgrade(&self.0), |i| i.drop_conn(id, "bad answer"));
            // Dropping the connection rejects `opened`: observe it, so the page sees no
            // unhandled rejection besides the error returned here.
            wasm_bindgen_futures::spawn_local(async move {
                let _ = JsFuture::from(opened).await;
            });
            return Err(js_error("BAD_ANSWER", format!("{e:?}")));
        }
        self.drive();
        JsFuture::from(opened).await.map(|v| v.as_string().unwrap_or_default())
    }

    /// Opens a link to `did`, signalled through the ring; resolves once it is open.
    async fn connect(&self, did: String) -> Result<(), JsValue> {
        let peer = parse_did(&did)?;
        let id = {
            let mut i = self.borrow_mut()?;
            if peer == i.node.did() {
                return Err(js_error("BAD_ARGUMENT", "cannot connect to ourselves"));
            }
            match i.by_did.get(&peer).copied() {
                Some(id) if i.conns.get(&id).is_some_and(|c| c.state == State::Open) => return Ok(()),
                Some(id) => id,
                None => i.open_through_ring(peer).ok_or_else(|| js_error("CONNECT_FAILED", "cannot start a connection"))?,
            }
        };
        let opened = self.wait_open(id)?;
        self.drive();
        JsFuture::from(opened).await.map(|_| ())
    }

    fn borrow_mut(&self) -> Result<std::cell::RefMut<'_, Inner>, JsValue> {
        let i = self.0.try_borrow_mut().map_err(|_| js_error("BUSY", "provider is busy"))?;
        if i.closed {
            return Err(js_error("CLOSED", "provider closed"));
        }
        Ok(i)
    }

    fn drive(&self) {
        with(&Rc::downgrade(&self.0), |_| {});
    }

    fn pc(&self, id: u64) -> Result<Rtc, JsValue> {
        self.0.borrow().conns.get(&id).map(|c| c.pc.clone()).ok_or_else(|| js_error("CLOSED", "provider closed"))
    }

    fn verified(&self, text: &str, answer: bool) -> Result<(Signal, Did), JsValue> {
        let code = if answer { "BAD_ANSWER" } else { "BAD_OFFER" };
        let signal = Signal::from_text(text).map_err(|e| js_error(code, e))?;
        if matches!(signal.kind, SignalKind::Answer(_)) != answer {
            return Err(js_error(code, crate::signal::SignalError::WrongKind));
        }
        let i = self.0.borrow();
        let skew = i.node.wire().config().skew;
        let from = signal.verify(i.network, now(), MANUAL_SIGNAL_MAX_AGE, skew).map_err(|e| js_error(code, e))?;
        Ok((signal, from))
    }

    /// A promise settled when connection `id` opens (with the peer's DID) or fails.
    fn wait_open(&self, id: u64) -> Result<js_sys::Promise, JsValue> {
        let mut i = self.borrow_mut()?;
        let c = i.conns.get_mut(&id).ok_or_else(|| js_error("CONNECT_FAILED", "connection gone"))?;
        let mut slot = None;
        let p = js_sys::Promise::new(&mut |resolve, reject| slot = Some((resolve, reject)));
        if let Some(s) = slot {
            c.waiters.push(s);
        }
        Ok(p)
    }
}
