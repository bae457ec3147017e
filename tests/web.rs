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
