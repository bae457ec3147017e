//! Browser tests: the core compiled to wasm32, run in headless Chromium by
//! wasm-bindgen-test (`cargo test --target wasm32-unknown-unknown`, or
//! `wasm-pack test --headless --chrome`).
#![cfg(target_arch = "wasm32")]

use rings_node::chord::{Config, Event, Node};
use rings_node::{Did, DidError, Instant};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn did_arithmetic_and_parsing_in_wasm() {
    let a: Did = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".parse().unwrap();
    assert_eq!(a.to_checksum(), "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
    assert_eq!(Did::MAX.wrapping_add(Did::from_u64(1)), Did::ZERO);
    assert!(Did::ZERO.in_open_closed(Did::MAX, Did::from_u64(3)));
    assert_eq!("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD".parse::<Did>(), Err(DidError::BadChecksum));
    assert_eq!(Did::from_name(b"abc").to_string(), "0xa9993e364706816aba3e25717850c26c9cd0d89d");
}

#[wasm_bindgen_test]
fn js_exports_throw_real_errors() {
    let e = rings_node::web::normalize_did("0x12").unwrap_err();
    let v: wasm_bindgen::JsValue = e.into();
    assert!(v.is_instance_of::<js_sys::Error>());
    assert_eq!(rings_node::web::resource_did("abc"), "0xa9993e364706816aba3e25717850c26c9cd0d89d");
}

/// Delivers everything `x` wants to send to `y` (through the binary codec) and fires
/// `x`'s timer if due.
fn pump(x: &mut Node, y: &mut Node, now: Instant) {
    while let Some(t) = x.poll_transmit() {
        assert_eq!(t.to, y.did());
        y.handle_frame(now, x.did(), &t.message.encode()).unwrap();
    }
    if x.poll_timeout().is_some_and(|t| t <= now) {
        x.handle_timeout(now);
    }
}

/// Two core nodes in the browser, wired by hand through the binary codec: they form a
/// ring and answer each other's lookups.
#[wasm_bindgen_test]
fn two_nodes_form_a_ring_in_wasm() {
    let (da, db) = (Did::from_u64(1000), Did::MAX);
    let mut a = Node::new(da, Config::default(), 1, Instant(0)).unwrap();
    let mut b = Node::new(db, Config::default(), 2, Instant(0)).unwrap();
    b.join(Instant(0), da);
    let mut now = Instant(0);
    for _ in 0..5_000 {
        now = Instant(now.0 + 1);
        pump(&mut a, &mut b, now);
        pump(&mut b, &mut a, now);
    }
    assert_eq!((a.successor(), a.predecessor()), (Some(db), Some(db)));
    assert_eq!((b.successor(), b.predecessor()), (Some(da), Some(da)));
    while a.poll_event().is_some() {}
    let id = a.lookup(now, Did::from_u64(5000));
    for _ in 0..100 {
        now = Instant(now.0 + 1);
        pump(&mut a, &mut b, now);
        pump(&mut b, &mut a, now);
    }
    let events: Vec<Event> = std::iter::from_fn(|| a.poll_event()).collect();
    assert!(events.iter().any(|e| matches!(e, Event::LookupDone { id: i, owner, .. } if *i == id && *owner == db)), "{events:?}");
}

// ---- the WebRTC driver itself, against real RTCPeerConnections in this page ----

use std::cell::RefCell;
use std::rc::Rc;

use rings_node::web::{WasmProvider, WasmSession};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

fn sleep(ms: i32) -> JsFuture {
    JsFuture::from(js_sys::Promise::new(&mut |resolve, _| {
        let global: js_sys::Object = js_sys::global();
        let set_timeout: js_sys::Function = js_sys::Reflect::get(&global, &"setTimeout".into()).unwrap().unchecked_into();
        set_timeout.call2(&JsValue::NULL, &resolve, &ms.into()).unwrap();
    }))
}

type Events = Rc<RefCell<Vec<JsValue>>>;

/// A provider whose events are collected; the closure must outlive it.
fn provider(key: u8) -> (WasmProvider, Events, Closure<dyn FnMut(JsValue)>) {
    let now = js_sys::Date::now();
    let session = WasmSession::from_private_key(&[key; 32], &[key ^ 0x55; 32], 1, now, 3_600_000.0).unwrap();
    let events: Events = Rc::default();
    let sink = events.clone();
    let cb = Closure::new(move |e: JsValue| sink.borrow_mut().push(e));
    let f: &js_sys::Function = cb.as_ref().unchecked_ref();
    let p = WasmProvider::new(&session, &[key; 32], js_sys::Array::new(), 10_000, 64, 15, f.clone()).unwrap();
    (p, events, cb)
}

fn field(v: &JsValue, k: &str) -> JsValue {
    js_sys::Reflect::get(v, &k.into()).unwrap_or(JsValue::UNDEFINED)
}

/// Waits (up to `ms`) for a `message` event and returns its bytes.
async fn next_message(events: &Events, ms: i32) -> Option<Vec<u8>> {
    for _ in 0..ms / 5 {
        let found = {
            let mut ev = events.borrow_mut();
            let at = ev.iter().position(|e| field(e, "type").as_string().as_deref() == Some("message"));
            at.map(|i| ev.remove(i))
        };
        if let Some(e) = found {
            return Some(field(&e, "data").unchecked_into::<js_sys::Uint8Array>().to_vec());
        }
        let _ = sleep(5).await;
    }
    None
}

fn code(e: JsValue) -> String {
    field(&e, "code").as_string().unwrap_or_default()
}

/// Two providers in this page: the signed manual handshake opens a real data channel;
/// a small and a 1 MiB message arrive intact both ways; a garbled offer and an answer
/// to nothing are refused with their codes; closing one is noticed by the other.
#[wasm_bindgen_test]
async fn the_driver_links_two_providers_and_carries_messages() {
    let (a, events_a, _ka) = provider(1);
    let (b, events_b, _kb) = provider(2);
    let offer = JsFuture::from(a.create_offer()).await.unwrap().as_string().unwrap();
    assert!(offer.starts_with("rings1."), "{offer}");
    let answer = JsFuture::from(b.answer_offer(offer)).await.unwrap().as_string().unwrap();
    let peer = JsFuture::from(a.accept_answer(answer.clone())).await.unwrap().as_string().unwrap();
    assert_eq!(peer, b.did());
    assert_eq!(a.peers(), vec![b.did()]);

    a.send(b.did(), b"over a real RTCDataChannel").unwrap();
    assert_eq!(next_message(&events_b, 5000).await.as_deref(), Some(&b"over a real RTCDataChannel"[..]));
    let big: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 + i / 255) as u8).collect();
    b.send(a.did(), &big).unwrap();
    assert!(next_message(&events_a, 10_000).await == Some(big), "1 MiB intact");

    let garbled = JsFuture::from(b.answer_offer("rings1.AAAA".into())).await.unwrap_err();
    assert_eq!(code(garbled), "BAD_OFFER");
    let stale = JsFuture::from(a.accept_answer(answer)).await.unwrap_err();
    assert_eq!(code(stale), "BAD_ANSWER");

    b.close();
    let mut noticed = false;
    for _ in 0..400 {
        noticed = events_a.borrow().iter().any(|e| field(e, "type").as_string().as_deref() == Some("peerDown"));
        if noticed {
            break;
        }
        let _ = sleep(5).await;
    }
    assert!(noticed, "closing B is noticed by A");
    assert!(a.peers().is_empty());
    a.close();
}
