//! The provider's promises: manual handshakes carried as signed text (`createOffer`,
//! `answerOffer`, `acceptAnswer`) and `connect(did)` through the ring.

use std::rc::Rc;

use rand_chacha::rand_core::RngCore;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::provider::{now, with, Inner, Manual, Shared, MANUAL_SIGNAL_MAX_AGE};
use super::{js_error, parse_did};
use crate::link::ConnId;
use crate::signal::{Signal, SignalError, SignalKind};
use crate::Did;

/// Manual offers remembered for their answers.
const MAX_MANUAL: usize = 16;

fn promise(f: impl std::future::Future<Output = Result<JsValue, JsValue>> + 'static) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(f)
}

/// Runs `f` on the unborrowed, open provider, then drives it.
fn on<T>(inner: &Shared, f: impl FnOnce(&mut Inner) -> Result<T, JsValue>) -> Result<T, JsValue> {
    let mut r = Err(js_error("CLOSED", "provider closed"));
    if inner.try_borrow_mut().is_err() {
        return Err(js_error("BUSY", "provider is busy"));
    }
    with(&Rc::downgrade(inner), |i| r = f(i));
    r
}

/// A signed offer for a manual handshake (copy-paste, QR, HTTP …).
pub(super) fn create_offer(inner: Shared) -> js_sys::Promise {
    promise(async move {
        let described = on(&inner, |i| {
            let (conn, _) = i.node.manual_offer(now(), MANUAL_SIGNAL_MAX_AGE).ok_or_else(no_room)?;
            Ok(i.wait_description(conn, Manual::Offer))
        })?;
        JsFuture::from(described).await
    })
}

/// Answers a peer's offer; resolves to the signed answer to send back.
pub(super) fn answer_offer(inner: Shared, offer: String) -> js_sys::Promise {
    promise(async move {
        let described = on(&inner, |i| {
            let (signal, from) = verified(i, &offer, false)?;
            if from == i.node.did() {
                return Err(js_error("BAD_ARGUMENT", "this is our own offer"));
            }
            let digest = signal.digest();
            let conn = i.node.answer_manual(now(), from, signal.sdp).ok_or_else(no_room)?;
            Ok(i.wait_description(conn, Manual::Answer { digest }))
        })?;
        JsFuture::from(described).await
    })
}

/// Takes the answer to our offer; resolves to the peer's DID once the link is open (and
/// starts joining the ring through it if this node is alone).
pub(super) fn accept_answer(inner: Shared, answer: String) -> js_sys::Promise {
    promise(async move {
        let opened = on(&inner, |i| {
            let (signal, from) = verified(i, &answer, true)?;
            let SignalKind::Answer(digest) = signal.kind else {
                return Err(js_error("BAD_ANSWER", "not an answer"));
            };
            let held = i.manual_offers.iter().position(|(d, _)| *d == digest);
            let Some((_, n)) = held.map(|at| i.manual_offers.remove(at)) else {
                return Err(js_error("BAD_ANSWER", "answer to an offer this provider does not hold"));
            };
            if i.node.accept_manual_answer(now(), n, from, signal.sdp).is_none() {
                return Err(js_error("BAD_ANSWER", "the offer is gone (timed out or closed)"));
            }
            i.wait_open(from)
        })?;
        JsFuture::from(opened).await
    })
}

/// Opens a link to `did`, signalled through the ring; resolves once it is open.
pub(super) fn connect(inner: Shared, did: String) -> js_sys::Promise {
    promise(async move {
        let peer = parse_did(&did)?;
        let opened = on(&inner, |i| {
            if peer == i.node.did() {
                return Err(js_error("BAD_ARGUMENT", "cannot connect to ourselves"));
            }
            if i.node.links().is_some_and(|l| l.is_open(peer)) {
                return Ok(None);
            }
            i.node.connect(now(), peer).ok_or_else(|| js_error("CONNECT_FAILED", "cannot start a connection"))?;
            i.wait_open(peer).map(Some)
        })?;
        match opened {
            Some(p) => JsFuture::from(p).await.map(|_| JsValue::UNDEFINED),
            None => Ok(JsValue::UNDEFINED),
        }
    })
}

fn no_room() -> JsValue {
    js_error("BUSY", "no room for another connection (every link is kept: young, a ring neighbour, or opening)")
}

/// The signal in `text`, verified, and its signer.
fn verified(i: &Inner, text: &str, answer: bool) -> Result<(Signal, Did), JsValue> {
    let code = if answer { "BAD_ANSWER" } else { "BAD_OFFER" };
    let signal = Signal::from_text(text).map_err(|e| js_error(code, e))?;
    if matches!(signal.kind, SignalKind::Answer(_)) != answer {
        return Err(js_error(code, SignalError::WrongKind));
    }
    let skew = i.node.wire().config().skew;
    let from = signal.verify(i.network, now(), MANUAL_SIGNAL_MAX_AGE, skew).map_err(|e| js_error(code, e))?;
    Ok((signal, from))
}

impl Inner {
    /// The signed text of a manual handshake's description; an offer is remembered for
    /// its answer.
    pub(super) fn sign_manual(&mut self, conn: ConnId, m: Manual, sdp: String) -> String {
        let kind = match &m {
            Manual::Offer => SignalKind::Offer,
            Manual::Answer { digest } => SignalKind::Answer(*digest),
        };
        let nonce = self.rng.next_u64();
        let signal = Signal::new(&self.session.0, kind, sdp, now(), nonce);
        if let (Manual::Offer, Some(n)) = (m, self.node.links().and_then(|l| l.negotiation_of(conn))) {
            if self.manual_offers.len() >= MAX_MANUAL {
                self.manual_offers.remove(0);
            }
            self.manual_offers.push((signal.digest(), n));
        }
        signal.to_text()
    }
}
