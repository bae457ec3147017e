//! The WebRTC driver: one [`Front`] (a node in link mode, with the requests of JS),
//! driven by the browser's event loop. Every link decision (when a link opens, the cap
//! and eviction, glare, the queue of bytes waiting for a link, credit, silent peers,
//! joining through the first link) is the core's ([`crate::link`]); this driver performs
//! what [`Node::poll_link`] asks on real `RTCPeerConnection`s ([`Rtc`]) and reports what
//! they did. Promises are [`Front`] requests whose token is their resolve/reject pair.
//!
//! - Ring-signalled links: offers, answers and candidates travel through the ring as the
//!   core's link messages. A description leaves after its first candidates (a short
//!   grace), the rest trickle.
//! - Manual bootstrap: `createOffer` / `answerOffer` / `acceptAnswer` carry signed text.
//! - Events reach JS only after the driver's state is released (a handler may call back).
//!
//! [`Node::poll_link`]: crate::node::Node::poll_link

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{RtcIceServer, RtcSdpType};

use super::rtc::{clear_timeout, performance_now, set_timeout, Rtc, GATHER_LIMIT_MS, LOW_WATER};
use super::session::WasmSession;
use super::{api_error, js_error, js_message, parse_did, to_js};
use crate::api::{data_channel_config, ApiError, ErrorCode, Front, Value, Wait};
use crate::link::{Candidate, CloseReason, ConnId};
use crate::node::LinkIo;
use crate::time::{Duration, Instant};

/// After the first ICE candidate, how long a manual description waits for more.
const CANDIDATE_GRACE_MS: i32 = 15;
/// How long a connection closed in agreement may take to send what it buffered.
const RETIRE_LIMIT: Duration = Duration::from_millis(5000);

thread_local!(static ORIGIN: f64 = js_sys::Date::now() - performance_now());

/// Monotonic time for the node's timers (the wall clock is set apart, in `with`).
pub(super) fn now() -> Instant {
    Instant(ORIGIN.with(|o| o + performance_now()).max(0.0) as u64)
}

/// A promise's resolve and reject.
type Settle = (js_sys::Function, js_sys::Function);

/// A connection the core asked for.
struct Conn {
    rtc: Rtc,
    /// Candidates gathered before the description left are in it (`grace` set).
    described: bool,
    grace: Option<i32>,
}

pub(crate) struct Inner {
    pub(super) front: Front<Settle>,
    ice_servers: js_sys::Array,
    /// How long a ring-signalled description waits after its first candidate.
    ring_grace: Option<i32>,
    conns: HashMap<ConnId, Conn>,
    /// Connections closed in agreement whose channel still sends what it buffered.
    retiring: Vec<(Rtc, Instant)>,
    on_event: js_sys::Function,
    timer: Option<JsValue>,
    timer_cb: Option<Closure<dyn FnMut()>>,
    closed: bool,
    me: Weak<RefCell<Inner>>,
}

type Shared = Rc<RefCell<Inner>>;

/// Runs `f` on the driver state, drives the node, then (state released) settles promises
/// and delivers events. `false`: not run (closed, or busy: called from inside).
pub(super) fn with(weak: &Weak<RefCell<Inner>>, f: impl FnOnce(&mut Inner)) -> bool {
    let Some(rc) = weak.upgrade() else { return false };
    let ((events, settled), handler) = {
        let Ok(mut i) = rc.try_borrow_mut() else { return false };
        if i.closed {
            return false;
        }
        i.front.node_mut().set_wall_clock(now(), js_sys::Date::now() as u64);
        f(&mut i);
        i.pump();
        (i.front.take(), i.on_event.clone())
    };
    deliver(settled);
    for e in events {
        let _ = handler.call1(&JsValue::UNDEFINED, &to_js(e));
    }
    true
}

fn deliver(settled: Vec<(Settle, Result<Value, ApiError>)>) {
    for ((resolve, reject), r) in settled {
        let _ = match r {
            Ok(v) => resolve.call1(&JsValue::UNDEFINED, &to_js(v)),
            Err(e) => reject.call1(&JsValue::UNDEFINED, &api_error(e)),
        };
    }
}

impl Inner {
    /// Drains the node until it is quiet: connection work, events, credit back from
    /// drained channels; then sets the timer.
    fn pump(&mut self) {
        loop {
            let mut work = false;
            while let Some(io) = self.front.poll_link() {
                work = true;
                self.perform(io);
            }
            work |= self.front.drain_events();
            let node = self.front.node_mut();
            let owed = node.links().map(|l| l.owed()).unwrap_or_default();
            for (id, c) in self.conns.iter().filter(|(id, _)| owed.contains(id)) {
                work |= node.handle_link_buffered(now(), *id, c.rtc.dc.buffered_amount() as usize);
            }
            if !work {
                break;
            }
        }
        let t = now();
        self.retiring.retain(|(r, until)| r.dc.buffered_amount() > 0 && *until > t);
        // While a retiring channel drains, look again soon.
        let retire = (!self.retiring.is_empty()).then(|| t + Duration::from_millis(50));
        let wake = [self.front.node().poll_timeout(), retire].into_iter().flatten().min();
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
                        self.front.connection_failed(conn, Some(ApiError::new(ErrorCode::Webrtc, js_message(&e))));
                        return self.front.node_mut().handle_link_closed(now(), conn);
                    }
                };
                let grace = if self.front.is_manual(conn) { Some(CANDIDATE_GRACE_MS) } else { self.ring_grace };
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
            }
        }
    }

    /// The connection's description is ready (or could not be made).
    fn described(&mut self, conn: ConnId, sdp: Result<String, JsValue>) {
        match sdp {
            Ok(sdp) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.described = true;
                }
                self.front.handle_description(now(), conn, sdp);
            }
            Err(e) => {
                let e = self.front.description_error(conn, js_message(&e));
                self.front.connection_failed(conn, Some(e));
                self.lost(conn);
            }
        }
    }

    /// The connection closed or failed on its own.
    pub(super) fn lost(&mut self, conn: ConnId) {
        if self.conns.remove(&conn).is_some() {
            self.front.node_mut().handle_link_closed(now(), conn);
        }
    }

    pub(super) fn local_candidate(&mut self, conn: ConnId, candidate: Candidate) {
        // Gathered before a description with candidates left: it is in it.
        if self.conns.get(&conn).is_some_and(|c| c.grace.is_some() && !c.described) {
            return;
        }
        self.front.node_mut().handle_local_candidate(now(), conn, candidate);
    }

    pub(super) fn grace_of(&self, conn: ConnId) -> i32 {
        self.conns.get(&conn).and_then(|c| c.grace).unwrap_or(0)
    }
}

/// A promise settled by the request `start` makes (rejected at once if it fails, or if
/// the provider is closed or busy).
fn request(inner: &Shared, start: impl FnOnce(&mut Inner) -> Result<Wait, ApiError>) -> js_sys::Promise {
    let mut slot = None;
    let promise = js_sys::Promise::new(&mut |resolve, reject| slot = Some((resolve, reject)));
    let Some(token) = slot else { return promise };
    let reject = token.1.clone();
    let mut failed = None;
    let busy = inner.try_borrow().is_err();
    let ran = with(&Rc::downgrade(inner), |i| match start(i) {
        Ok(w) => i.front.wait(w, token),
        Err(e) => failed = Some(e),
    });
    if !ran {
        failed = Some(if busy {
            ApiError::new(ErrorCode::Busy, "provider is busy")
        } else {
            ApiError::new(ErrorCode::Closed, "provider closed")
        });
    }
    if let Some(e) = failed {
        let _ = reject.call1(&JsValue::UNDEFINED, &api_error(e));
    }
    promise
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
        #[wasm_bindgen(unchecked_param_type = "RTCIceServer[]")] ice_servers: js_sys::Array,
        connect_timeout_ms: u32,
        max_connections: u32,
        ring_candidate_wait_ms: u32,
        #[wasm_bindgen(unchecked_param_type = "(e: ProviderEvent) => void")] on_event: js_sys::Function,
    ) -> Result<WasmProvider, JsValue> {
        let seed: [u8; 32] = seed.try_into().map_err(|_| js_error(ErrorCode::BadArgument, "seed must be 32 random bytes"))?;
        if ice_servers.iter().any(|s| s.dyn_ref::<RtcIceServer>().is_none() && !s.is_object()) {
            return Err(js_error(ErrorCode::BadArgument, "iceServers must be RTCIceServer objects"));
        }
        let cfg = data_channel_config(session.0.delegation().network, max_connections, connect_timeout_ms, LOW_WATER as usize);
        let front = Front::new(session.0.clone(), cfg, seed, now()).map_err(api_error)?;
        let inner = Rc::new_cyclic(|me: &Weak<RefCell<Inner>>| {
            let w = me.clone();
            RefCell::new(Inner {
                front,
                ice_servers,
                ring_grace: (ring_candidate_wait_ms > 0).then_some(ring_candidate_wait_ms.min(GATHER_LIMIT_MS as u32) as i32),
                conns: HashMap::new(),
                retiring: Vec::new(),
                on_event,
                timer: None,
                timer_cb: Some(Closure::new(move || {
                    with(&w, |i| {
                        i.timer = None;
                        i.front.node_mut().handle_timeout(now());
                    });
                })),
                closed: false,
                me: me.clone(),
            })
        });
        with(&Rc::downgrade(&inner), |_| {});
        Ok(WasmProvider { inner })
    }

    #[wasm_bindgen(getter)]
    pub fn did(&self) -> String {
        self.inner.borrow().front.node().did().to_checksum()
    }

    /// A signed offer for a manual handshake (copy-paste, QR, HTTP …): `Promise<string>`.
    #[wasm_bindgen(js_name = createOffer, unchecked_return_type = "Promise<string>")]
    pub fn create_offer(&self) -> js_sys::Promise {
        request(&self.inner, |i| i.front.create_offer(now()))
    }

    /// Answers a peer's offer: `Promise<string>` (the signed answer to send back).
    #[wasm_bindgen(js_name = answerOffer, unchecked_return_type = "Promise<string>")]
    pub fn answer_offer(&self, offer: String) -> js_sys::Promise {
        request(&self.inner, |i| i.front.answer_offer(now(), &offer))
    }

    /// Takes the answer to our offer: `Promise<string>`, the peer's DID once the link is
    /// open (this node then joins the ring through it if it is alone).
    #[wasm_bindgen(js_name = acceptAnswer, unchecked_return_type = "Promise<string>")]
    pub fn accept_answer(&self, answer: String) -> js_sys::Promise {
        request(&self.inner, |i| i.front.accept_answer(now(), &answer))
    }

    /// Opens a link to `did`, signalled through the ring: `Promise<string>` (the DID).
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn connect(&self, did: String) -> js_sys::Promise {
        match parse_did(&did) {
            Ok(peer) => request(&self.inner, |i| i.front.connect(now(), peer)),
            Err(e) => js_sys::Promise::reject(&e),
        }
    }

    /// Closes the link to `did` (the ring will route around it).
    pub fn disconnect(&self, did: String) -> Result<(), JsValue> {
        let peer = parse_did(&did)?;
        with(&Rc::downgrade(&self.inner), |i| i.front.node_mut().disconnect(now(), peer));
        Ok(())
    }

    /// DIDs with an open link.
    pub fn peers(&self) -> Vec<String> {
        self.inner.borrow().front.peers().into_iter().map(|d| d.to_checksum()).collect()
    }

    /// `{did, joined, successor, predecessor, successors, fingers, connections, pending, stats}`.
    #[wasm_bindgen(unchecked_return_type = "ProviderInfo")]
    pub fn info(&self) -> JsValue {
        let i = self.inner.borrow();
        let buffered: f64 = i.conns.values().map(|c| f64::from(c.rtc.dc.buffered_amount())).sum();
        to_js(i.front.info(vec![("bufferedBytes", Value::Num(buffered))]))
    }

    /// Sends application bytes to `did`, signed and end-to-end encrypted, through the
    /// ring. Returns the transaction id named by a later `undelivered` event.
    pub fn send(&self, did: String, data: &[u8]) -> Result<u64, JsValue> {
        let peer = parse_did(&did)?;
        let mut result = Err(ApiError::new(ErrorCode::Closed, "provider closed"));
        with(&Rc::downgrade(&self.inner), |i| result = i.front.send(now(), peer, data));
        result.map_err(api_error)
    }

    /// Writes `value` at `key` for `ttlMs` ([`Front::put`]); resolves once the key's owner
    /// has stored it.
    #[wasm_bindgen(js_name = storePut, unchecked_return_type = "Promise<null>")]
    pub fn store_put(&self, key: &[u8], set: bool, value: &[u8], ttl_ms: f64, keep: bool) -> js_sys::Promise {
        request(&self.inner, |i| i.front.put(now(), key, set, value.to_vec(), ttl_ms, keep))
    }

    /// The live records at `key`: `[{writer, value, version, expiresAt, kind}]` (empty if
    /// none), checked against their writers' signatures.
    #[wasm_bindgen(js_name = storeGet, unchecked_return_type = "Promise<StoredRecord[]>")]
    pub fn store_get(&self, key: &[u8]) -> js_sys::Promise {
        request(&self.inner, |i| Ok(i.front.get(now(), key)))
    }

    /// Stops rewriting a record kept by `storePut(…, keep)`.
    #[wasm_bindgen(js_name = storeForget)]
    pub fn store_forget(&self, key: &[u8], set: bool) {
        with(&Rc::downgrade(&self.inner), |i| i.front.forget(key, set));
    }

    /// Leaves the ring and closes every connection. Idempotent.
    pub fn close(&self) {
        let settled = {
            let Ok(mut i) = self.inner.try_borrow_mut() else { return };
            if i.closed {
                return;
            }
            i.front.node_mut().leave(now());
            i.pump(); // hand the goodbye messages to the channels
            i.front.close(now());
            i.pump();
            i.conns.clear();
            i.retiring.clear();
            if let Some(t) = i.timer.take() {
                clear_timeout(&t);
            }
            i.timer_cb = None;
            i.closed = true;
            i.front.take().1
        };
        deliver(settled);
    }
}
