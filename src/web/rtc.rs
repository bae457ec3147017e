//! One `RTCPeerConnection` and its data channel, as the link manager's connection:
//! every handler reports to the driver by connection id, and dropping an [`Rtc`] unsets
//! every handler, closes both, and settles every wait on them.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelInit, RtcDataChannelType, RtcPeerConnection, RtcPeerConnectionIceEvent,
    RtcPeerConnectionState, RtcSdpType, RtcSessionDescriptionInit,
};

use super::js_error;
use super::provider::{with, Inner};
use crate::api::ErrorCode;
use crate::link::{Candidate, ConnId};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    pub(super) fn set_timeout(f: &js_sys::Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    pub(super) fn clear_timeout(id: &JsValue);
    /// Monotonic milliseconds since the page (or worker) began.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    pub(super) fn performance_now() -> f64;
}

/// Channel bytes above which routed-frame credit is withheld (see `LinkConfig::low_water`).
pub(super) const LOW_WATER: u32 = 1 << 20;
/// However slow gathering is, a description leaves after this long.
pub(super) const GATHER_LIMIT_MS: i32 = 1500;
/// What a wait on a closed connection resolves to.
const CLOSED: &str = "rings:connection-closed";

/// A peer connection with one ordered, reliable, pre-negotiated (id 0) binary channel,
/// owned by the driver (tasks hold only its [`RtcIo`]).
pub(super) struct Rtc {
    pub(super) io: RtcIo,
    pub(super) dc: RtcDataChannel,
    close_waits: js_sys::Function,
    _callbacks: Vec<Closure<dyn FnMut(JsValue)>>,
}

/// What a task needs of a connection: it does not keep the [`Rtc`] alive.
#[derive(Clone)]
pub(super) struct RtcIo {
    pc: RtcPeerConnection,
    /// Resolves when the [`Rtc`] is dropped: every wait races it, since a closed
    /// `RTCPeerConnection` never settles what it had pending (a task left waiting would
    /// keep the connection reachable forever).
    closed: js_sys::Promise,
    /// Resolves a description's wait for its first candidates (see [`RtcIo::local_sdp`]).
    gathering: Rc<RefCell<Option<js_sys::Function>>>,
}

impl Drop for Rtc {
    fn drop(&mut self) {
        let pc = &self.io.pc;
        pc.set_onconnectionstatechange(None);
        pc.set_onicecandidate(None);
        self.dc.set_onopen(None);
        self.dc.set_onclose(None);
        self.dc.set_onmessage(None);
        self.dc.set_onbufferedamountlow(None);
        self.dc.close();
        pc.close();
        let _ = self.close_waits.call1(&JsValue::UNDEFINED, &CLOSED.into());
    }
}

impl Rtc {
    /// A connection whose events reach the driver `me` as connection `conn`'s.
    pub(super) fn new(ice_servers: &js_sys::Array, conn: ConnId, me: &Weak<RefCell<Inner>>) -> Result<Rtc, JsValue> {
        let cfg = RtcConfiguration::new();
        cfg.set_ice_servers(ice_servers);
        let pc = RtcPeerConnection::new_with_configuration(&cfg).map_err(|e| js_error(ErrorCode::Webrtc, format!("{e:?}")))?;
        let init = RtcDataChannelInit::new();
        init.set_negotiated(true);
        init.set_id(0);
        init.set_ordered(true);
        let dc = pc.create_data_channel_with_data_channel_dict("rings", &init);
        dc.set_binary_type(RtcDataChannelType::Arraybuffer);
        dc.set_buffered_amount_low_threshold(LOW_WATER);
        let gathering: Rc<RefCell<Option<js_sys::Function>>> = Rc::default();
        let on = |f: Box<dyn Fn(&mut Inner, JsValue)>| {
            let w = me.clone();
            Closure::new(move |e: JsValue| {
                with(&w, |i| f(i, e));
            })
        };
        let callbacks: Vec<Closure<dyn FnMut(JsValue)>> = vec![
            on(Box::new(move |i, _| i.front.node_mut().handle_link_open(super::provider::now(), conn))),
            on(Box::new(move |i, _| i.lost(conn))),
            on(Box::new(move |i, e| {
                let Some(buf) = e.dyn_into::<MessageEvent>().ok().and_then(|m| m.data().dyn_into::<js_sys::ArrayBuffer>().ok()) else {
                    return;
                };
                // A bad frame is counted by the core.
                let _ = i.front.node_mut().handle_link_frame(super::provider::now(), conn, &js_sys::Uint8Array::new(&buf).to_vec());
            })),
            on(Box::new(|_, _| {})), // bufferedamountlow: the pump returns the credit
            {
                let pc = pc.clone();
                on(Box::new(move |i, _| {
                    use RtcPeerConnectionState as S;
                    if matches!(pc.connection_state(), S::Failed | S::Closed | S::Disconnected) {
                        i.lost(conn);
                    }
                }))
            },
            {
                let gathering = gathering.clone();
                on(Box::new(move |i, e| {
                    let cand = e.dyn_into::<RtcPeerConnectionIceEvent>().ok().and_then(|e| e.candidate());
                    if let Some(resolve) = gathering.borrow().as_ref() {
                        match &cand {
                            Some(_) => drop(set_timeout(resolve, i.grace_of(conn))),
                            None => drop(resolve.call0(&JsValue::UNDEFINED)),
                        }
                    }
                    if let Some(c) = cand {
                        i.local_candidate(conn, Candidate { candidate: c.candidate(), mid: c.sdp_mid(), mline: c.sdp_m_line_index() });
                    }
                }))
            },
        ];
        dc.set_onopen(Some(callbacks[0].as_ref().unchecked_ref()));
        dc.set_onclose(Some(callbacks[1].as_ref().unchecked_ref()));
        dc.set_onmessage(Some(callbacks[2].as_ref().unchecked_ref()));
        dc.set_onbufferedamountlow(Some(callbacks[3].as_ref().unchecked_ref()));
        pc.set_onconnectionstatechange(Some(callbacks[4].as_ref().unchecked_ref()));
        pc.set_onicecandidate(Some(callbacks[5].as_ref().unchecked_ref()));
        let mut close = None;
        let closed = js_sys::Promise::new(&mut |resolve, _| close = Some(resolve));
        // The executor runs synchronously: `close` is set.
        let close_waits = close.unwrap_or_else(|| js_sys::Function::new_no_args(""));
        Ok(Rtc { io: RtcIo { pc, closed, gathering }, dc, close_waits, _callbacks: callbacks })
    }
}

impl RtcIo {
    /// Waits for `op`, or fails once the connection is dropped.
    async fn wait(&self, op: js_sys::Promise) -> Result<JsValue, JsValue> {
        let v = JsFuture::from(js_sys::Promise::race(&js_sys::Array::of2(&op, &self.closed))).await?;
        if v.as_string().as_deref() == Some(CLOSED) {
            return Err(js_error(ErrorCode::Closed, "connection closed"));
        }
        Ok(v)
    }

    /// Starts setting the peer's description, at once: candidates added after it wait
    /// behind it on the connection's operations chain (added first, they would fail).
    pub(super) fn set_remote(&self, kind: RtcSdpType, sdp: &str) -> js_sys::Promise {
        let d = RtcSessionDescriptionInit::new(kind);
        d.set_sdp(sdp);
        self.pc.set_remote_description(&d)
    }

    /// Waits for a description being set.
    pub(super) async fn remote(&self, op: js_sys::Promise) -> Result<(), JsValue> {
        self.wait(op).await.map(|_| ())
    }

    /// Makes the offer, or the answer to `offer`, and sets it; returns it once the first
    /// candidates are in it (`grace` after the first, or gathering complete, or
    /// [`GATHER_LIMIT_MS`]) — or at once without candidates (`grace` `None`: they all
    /// trickle through the ring).
    /// `offer`: the peer's offer being set ([`RtcIo::set_remote`]).
    pub(super) async fn local_sdp(&self, offer: Option<js_sys::Promise>, grace: Option<i32>) -> Result<String, JsValue> {
        let answering = offer.is_some();
        if let Some(op) = offer {
            self.remote(op).await?;
        }
        let pc = &self.pc;
        let desc = self.wait(if answering { pc.create_answer() } else { pc.create_offer() }).await?;
        let sdp = js_sys::Reflect::get(&desc, &"sdp".into())?.as_string().unwrap_or_default();
        let init = RtcSessionDescriptionInit::new(if answering { RtcSdpType::Answer } else { RtcSdpType::Offer });
        init.set_sdp(&sdp);
        self.wait(pc.set_local_description(&init)).await?;
        let local = || pc.local_description().map(|d| d.sdp()).ok_or_else(|| js_error(ErrorCode::Webrtc, "no local description"));
        if grace.is_none() {
            // Line by line, endings kept (a `split("\r\n")` costs a substring searcher in the wasm).
            let keep = |l: &&str| !l.starts_with("a=candidate:") && !l.starts_with("a=end-of-candidates");
            return Ok(local()?.split_inclusive('\n').filter(keep).collect());
        }
        let mut slot = None;
        let first = js_sys::Promise::new(&mut |resolve, _| slot = Some(resolve));
        let Some(resolve) = slot else { return local() };
        let limit = set_timeout(&resolve, GATHER_LIMIT_MS);
        *self.gathering.borrow_mut() = Some(resolve.clone());
        if pc.ice_gathering_state() == web_sys::RtcIceGatheringState::Complete {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
        let done = self.wait(first).await;
        clear_timeout(&limit);
        *self.gathering.borrow_mut() = None;
        done?;
        local()
    }

    pub(super) fn add_candidate(&self, c: &Candidate) {
        let init = web_sys::RtcIceCandidateInit::new(&c.candidate);
        init.set_sdp_mid(c.mid.as_deref());
        init.set_sdp_m_line_index(c.mline);
        let (me, op) = (self.clone(), self.pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)));
        // A candidate the browser refuses (or a connection closed meanwhile) costs nothing.
        wasm_bindgen_futures::spawn_local(async move {
            let _ = me.wait(op).await;
        });
    }
}
