//! Two fronts over an in-memory "data channel": manual handshake, requests settled by the
//! node's events, typed errors for bad input, and every waiter failed on close.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::link::ConnId;
use crate::node::LinkIo;
use crate::sim::pair::{session, DAY, T0};
use crate::time::Instant;
use crate::Did;

type F = Front<u32>;

fn front(seed: u8) -> F {
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(seed));
    let s = session(&mut rng, 7, T0, DAY);
    Front::new(s, data_channel_config(7, 8, 5_000, 1 << 20), [seed; 32], Instant(T0)).expect("valid config")
}

/// Performs each side's link work: descriptions are "sdp-<conn>", a connection opens
/// once both sides have described it and the answer is set; frames cross.
struct Wires {
    /// (side, conn) of the connections each side created, paired in creation order.
    created: [Vec<ConnId>; 2],
    answered: bool,
}

fn step(fronts: &mut [F; 2], w: &mut Wires, now: Instant) {
    for _ in 0..50 {
        let mut work = false;
        for side in 0..2 {
            while let Some(io) = fronts[side].node_mut().poll_link() {
                work = true;
                match io {
                    LinkIo::Create { conn, .. } => {
                        w.created[side].push(conn);
                        fronts[side].handle_description(now, conn, format!("v=0 sdp-{}", conn.0));
                    }
                    LinkIo::SetAnswer { .. } => {
                        w.answered = true;
                        for (f, created) in fronts.iter_mut().zip(&w.created) {
                            f.node_mut().handle_link_open(now, created[0]);
                        }
                    }
                    LinkIo::Send { bytes, .. } => {
                        let other = 1 - side;
                        if let Some(&c) = w.created[other].first() {
                            let _ = fronts[other].node_mut().handle_link_frame(now, c, &bytes);
                        }
                    }
                    LinkIo::AddCandidate { .. } | LinkIo::Close { .. } => {}
                }
            }
            work |= fronts[side].drain_events();
        }
        if !work {
            return;
        }
    }
}

fn settled(f: &mut F) -> Vec<(u32, Result<Value, ApiError>)> {
    f.take().1
}

fn text(v: &Result<Value, ApiError>) -> String {
    match v {
        Ok(Value::Str(s)) => s.clone(),
        other => panic!("not text: {other:?}"),
    }
}

#[test]
fn a_manual_handshake_settles_each_request_and_links_the_two() {
    let mut fronts = [front(1), front(2)];
    let mut w = Wires { created: [vec![], vec![]], answered: false };
    let now = Instant(T0 + 1_000);
    let offer = fronts[0].create_offer(now).expect("room for an offer");
    fronts[0].wait(offer, 1);
    step(&mut fronts, &mut w, now);
    let s = settled(&mut fronts[0]);
    assert_eq!(s.len(), 1);
    let offer_text = text(&s[0].1);
    assert!(offer_text.starts_with("rings1."), "{offer_text}");

    let answer = fronts[1].answer_offer(now, &offer_text).expect("a valid offer");
    fronts[1].wait(answer, 2);
    step(&mut fronts, &mut w, now);
    let s = settled(&mut fronts[1]);
    let answer_text = text(&s[0].1);

    let b = fronts[1].node().did();
    let open = fronts[0].accept_answer(now, &answer_text).expect("the answer to our offer");
    fronts[0].wait(open, 3);
    step(&mut fronts, &mut w, now);
    assert!(w.answered);
    let (events, s) = fronts[0].take();
    assert_eq!(s, vec![(3, Ok(Value::did(b)))], "settled with the peer's DID");
    assert!(
        events.iter().any(|e| e.get("type") == Some(&Value::Str("peerUp".into())) && e.get("did") == Some(&Value::did(b))),
        "{events:?}"
    );
    assert_eq!(fronts[0].peers(), vec![b]);

    // Already linked: `connect` is done at once.
    let c = fronts[0].connect(now, b).expect("connect");
    fronts[0].wait(c, 4);
    assert_eq!(settled(&mut fronts[0]), vec![(4, Ok(Value::did(b)))]);
    // The same answer again: its offer is spent.
    assert_eq!(fronts[0].accept_answer(now, &answer_text).unwrap_err().code, ErrorCode::BadAnswer);
    let info = fronts[0].info(vec![]);
    assert_eq!(info.get("connections"), Some(&Value::Num(1.0)), "{info:?}");
}

/// Starts a manual offer waiting on token 1.
fn offer(f: &mut F, now: Instant) {
    let o = f.create_offer(now).expect("room for an offer");
    f.wait(o, 1);
}

/// A manual offer's signed text (its connection described at once).
fn described_offer(f: &mut F, now: Instant) -> String {
    offer(f, now);
    let Some(LinkIo::Create { conn, .. }) = f.poll_link() else { panic!("a connection to create") };
    f.handle_description(now, conn, "v=0 offer".into());
    text(&settled(f)[0].1)
}

#[test]
fn bad_requests_get_their_codes() {
    let mut a = front(3);
    let mut b = front(4);
    let now = Instant(T0 + 1_000);
    let e = |r: Result<Wait, ApiError>| r.unwrap_err().code;
    assert_eq!(e(a.answer_offer(now, "rings1.AAAA")), ErrorCode::BadOffer);
    assert_eq!(e(a.answer_offer(now, "hello")), ErrorCode::BadOffer);
    assert_eq!(e(a.accept_answer(now, "")), ErrorCode::BadAnswer);
    let me = a.node().did();
    assert_eq!(e(a.connect(now, me)), ErrorCode::BadArgument);
    assert_eq!(e(a.put(now, b"k", false, vec![1], f64::NAN, false)), ErrorCode::BadArgument);
    assert_eq!(e(a.put(now, b"k", false, vec![1], 0.5, false)), ErrorCode::BadArgument);
    // An offer is not an answer, and our own offer is not answered.
    let offer_text = described_offer(&mut a, now);
    assert_eq!(e(a.answer_offer(now, &offer_text)), ErrorCode::BadArgument);
    assert_eq!(e(b.accept_answer(now, &offer_text)), ErrorCode::BadAnswer);
    // Answered once: the same offer again would replace the link it made.
    let first = b.answer_offer(now, &offer_text).expect("a fresh offer");
    b.wait(first, 7);
    assert_eq!(e(b.answer_offer(now, &offer_text)), ErrorCode::BadOffer);
    // Too old an offer.
    let late = Instant(now.0 + MANUAL_SIGNAL_MAX_AGE.as_millis() + 120_000);
    assert_eq!(e(b.answer_offer(late, &offer_text)), ErrorCode::BadOffer);
    // Another network's offer.
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let other = Front::<u32>::new(session(&mut rng, 8, T0, DAY), data_channel_config(8, 8, 5_000, 1 << 20), [9; 32], now);
    let foreign = described_offer(&mut other.unwrap(), now);
    assert_eq!(e(b.answer_offer(now, &foreign)), ErrorCode::BadOffer);
}

#[test]
fn close_fails_every_waiting_request_and_waiters_are_bounded() {
    let mut a = front(5);
    let now = Instant(T0 + 1_000);
    offer(&mut a, now);
    let g = a.get(now, b"key");
    a.wait(g, 2);
    for i in 0..300u32 {
        a.wait(Wait::Open(Did::from_name(&i.to_be_bytes())), 10 + i);
    }
    let (_, s) = a.take();
    assert_eq!(s.len(), 300 - 256, "waiters beyond the bound are refused at once");
    assert!(s.iter().all(|(_, r)| r.as_ref().unwrap_err().code == ErrorCode::Busy));
    a.close(now);
    let (_, s) = a.take();
    assert_eq!(s.len(), 2 + 256);
    assert!(s.iter().all(|(_, r)| r.as_ref().unwrap_err().code == ErrorCode::Closed));
    let mut tokens: Vec<u32> = s.iter().map(|(t, _)| *t).collect();
    tokens.sort();
    assert_eq!(&tokens[..2], &[1, 2]);
    // Closed: every request fails at once, and a late wait settles CLOSED.
    assert_eq!(a.create_offer(now).unwrap_err().code, ErrorCode::Closed);
    assert_eq!(a.put(now, b"k", false, vec![], 1000.0, false).unwrap_err().code, ErrorCode::Closed);
    a.wait(Wait::Ready(Value::Null), 99);
    assert_eq!(a.take().1, vec![(99, Err(ApiError::closed()))]);
}

#[test]
fn a_manual_connection_that_closes_fails_its_description() {
    let mut a = front(6);
    let now = Instant(T0 + 1_000);
    offer(&mut a, now);
    let Some(LinkIo::Create { conn, .. }) = a.poll_link() else { panic!("a connection to create") };
    a.node_mut().handle_link_closed(now, conn);
    while let Some(io) = a.poll_link() {
        drop(io);
    }
    let _ = a.drain_events();
    assert_eq!(
        settled(&mut a).iter().map(|(t, r)| (*t, r.as_ref().map_err(|e| e.code).err())).collect::<Vec<_>>(),
        vec![(1, Some(ErrorCode::ConnectFailed))]
    );
}
