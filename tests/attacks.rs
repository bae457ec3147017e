#![cfg(not(target_arch = "wasm32"))]
//! Attacks on the wire, table-driven: each crafted frame is refused with its own typed
//! reason, and counted. Two real nodes (A and B, direct neighbours in a ring of two) and
//! frames built here by hand, independently of the sender's code path.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rings_node::identity::pair::TAG_LEN;
use rings_node::identity::{AccountKind, LocalAccount, Session};
use rings_node::node::FrameError;
use rings_node::wire::frame::{Auth, Header, Kind, Part, SessionProof};
use rings_node::wire::{RejectReason, RouteError, WireConfig};
use rings_node::{Did, Event, Identity, Instant, Node, NodeConfig};

mod common;
use common::craft::{app_body, Craft};
use common::{pump, ring_of_two, session, DAY, T0};

#[test]
fn every_attack_is_refused_with_its_reason_and_counted() {
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    let account_a = LocalAccount::generate(&mut rng);
    let sa = Session::with_local_account(&mut rng, &account_a, AccountKind::Eip191, 1, Instant(T0), DAY);
    // A's own account delegated to another session three days ago, for one day.
    let old = Session::with_local_account(&mut rng, &account_a, AccountKind::Secp256k1, 1, Instant(T0 - 3 * DAY.as_millis()), DAY);
    let sb = session(&mut rng, 1, T0, DAY);
    let mallory = session(&mut rng, 1, T0, DAY);
    let (mut a, mut b, now) = ring_of_two(sa.clone(), sb.clone());
    let (da, db) = (a.did(), b.did());
    let cfg = WireConfig::default();
    let ttl = cfg.ttl.as_millis() as u32;
    let skew = cfg.skew.as_millis();
    // The keys A's session shares with B's, and Mallory's with B's.
    let a_b = sa.pair_keys(sb.public_key(), sb.fingerprint());
    let mallory_b = mallory.pair_keys(sb.public_key(), sb.fingerprint());

    let mut next_tx = 1000u64;
    // A data message: A's session by reference, the body sealed for B's session.
    let honest = |tx: u64, body: Vec<u8>| Craft {
        signer: sa.clone(),
        seal: Some((a_b.clone(), sb.fingerprint())),
        proof: SessionProof::Known(sa.fingerprint()),
        origin: da,
        dest: db,
        tx,
        network: 1,
        issued_at: now.as_millis(),
        ttl,
        kind: Kind::Data,
        hop_limit: 32,
        body,
        piece: 1024,
        path: Vec::new(),
        nonce: [tx as u8; 24],
    };
    // A session-opening message: signed, A's delegation in full.
    let hello = |c: &mut Craft| {
        c.kind = Kind::Hello;
        c.seal = None;
        c.proof = SessionProof::Full(c.signer.delegation().clone());
        c.body = Vec::new();
    };
    let one = |c: &Craft| c.frames().remove(0).encode();

    // Positive controls first: an honest hello opens A's session at B, then an honest
    // single-frame and three-frame data message arrive.
    let mut opening = honest(next_tx, Vec::new());
    next_tx += 1;
    hello(&mut opening);
    assert_eq!(b.handle_frame(now, da, &one(&opening)), Ok(()));
    let tx = next_tx;
    next_tx += 1;
    let valid = honest(tx, app_body(b"hello B"));
    let valid_bytes = one(&valid);
    assert_eq!(b.handle_frame(now, da, &valid_bytes), Ok(()));
    let tx3 = next_tx;
    next_tx += 1;
    let three = honest(tx3, app_body(&[7u8; 2500]));
    for f in three.frames() {
        assert_eq!(b.handle_frame(now, da, &f.encode()), Ok(()));
    }
    let delivered: Vec<Vec<u8>> = std::iter::from_fn(|| b.poll_event())
        .filter_map(|e| match e {
            Event::Message(d) if d.from == da => Some(d.body),
            _ => None,
        })
        .collect();
    let want = vec![b"hello B".to_vec(), vec![7u8; 2500]];
    assert!(delivered == want, "delivered {:?}", delivered.iter().map(Vec::len).collect::<Vec<_>>());

    // ---- the table: (attack, frames to feed in order, reason the last one gets) ----
    let mut rows: Vec<(&str, Vec<Vec<u8>>, RejectReason)> = Vec::new();
    let mut fresh = |f: &mut dyn FnMut(&mut Craft)| {
        let tx = next_tx;
        next_tx += 1;
        let mut c = honest(tx, vec![0xAB; 200]);
        f(&mut c);
        c
    };

    rows.push(("replayed transaction", vec![valid_bytes.clone()], RejectReason::Replay));
    let c = fresh(&mut |c| hello(c));
    let mut f = c.frames().remove(0);
    if let Part::Head(Header { auth: Auth::Signature(sig), .. }) = &mut f.part {
        sig.r = [0x42; 32]; // not made by any key
    }
    rows.push(("forged signature", vec![f.encode()], RejectReason::BadSignature));
    let c = fresh(&mut |c| c.seal = Some((mallory_b.clone(), sb.fingerprint())));
    rows.push(("data sealed by another node posing as A", vec![one(&c)], RejectReason::BadSignature));
    let c = fresh(&mut |c| c.seal = None);
    rows.push(("data signed instead of sealed", vec![one(&c)], RejectReason::UnexpectedKind));
    let c = fresh(&mut |_| {});
    let mut f = c.frames().remove(0);
    f.piece[10] ^= 1;
    rows.push(("tampered body", vec![f.encode()], RejectReason::BadSignature));
    let c = fresh(&mut |_| {});
    let mut f = c.frames().remove(0);
    if let Part::Head(h) = &mut f.part {
        h.ttl -= 1000; // a relay changing a message's life
    }
    rows.push(("tampered header", vec![f.encode()], RejectReason::BadSignature));
    let c = fresh(&mut |c| c.ttl = u32::MAX);
    rows.push(("lifetime over the configured ttl (replay-cache poisoning)", vec![one(&c)], RejectReason::TtlTooLong));
    let c = fresh(&mut |c| {
        c.seal = Some((mallory_b.clone(), sb.fingerprint()));
        c.body = vec![0xAB; 2500];
    });
    rows.push(("first of 3 frames sealed by another node posing as A", vec![one(&c)], RejectReason::BadSignature));
    let c = fresh(&mut |c| {
        hello(c);
        c.body = vec![0xAB; 2500];
    });
    rows.push(("signed message in several frames", vec![one(&c)], RejectReason::UnexpectedKind));
    let c = fresh(&mut |c| c.body = vec![0xAB; 2500]);
    let mut f = c.frames().remove(0);
    if let Part::Head(h) = &mut f.part {
        h.frames = 2500; // one byte a frame
    }
    rows.push(("more frames than the length allows", vec![f.encode()], RejectReason::Malformed));
    let c = fresh(&mut |c| c.body = vec![0xAB; 2500]);
    let mut f = c.frames();
    f[1].piece.clear(); // a keep-alive
    rows.push(("empty piece", vec![f[0].encode(), f[1].encode()], RejectReason::Truncated));
    let c = fresh(&mut |c| c.body = vec![0xAB; 2500]);
    let mut f = c.frames();
    f[1].piece.truncate(100);
    rows.push(("short piece before the last", vec![f[0].encode(), f[1].encode()], RejectReason::Truncated));
    let c = fresh(&mut |_| {});
    let mut f = c.frames().remove(0);
    f.hop_limit = 200; // signed: a relay may not raise it
    rows.push(("tampered hop limit", vec![f.encode()], RejectReason::BadSignature));
    let c = fresh(&mut |c| c.path = vec![Did::from_u64(5)]);
    rows.push(("relay path not ending with the sender", vec![one(&c)], RejectReason::PathMismatch));
    let c = fresh(&mut |c| c.issued_at = now.as_millis() - ttl as u64 - skew - 1);
    rows.push(("expired", vec![one(&c)], RejectReason::Expired));
    let c = fresh(&mut |c| c.issued_at = now.as_millis() + skew + 1);
    rows.push(("timestamp too far in the future", vec![one(&c)], RejectReason::FromFuture));
    let c = fresh(&mut |c| c.network = 2);
    rows.push(("wrong network id", vec![one(&c)], RejectReason::WrongNetwork));

    let c = fresh(&mut |c| {
        c.signer = old.clone();
        hello(c);
    });
    rows.push(("expired delegation", vec![one(&c)], RejectReason::DelegationExpired));
    // Mallory's account signs a delegation that claims to be A's.
    let mut claimed = mallory.delegation().clone();
    claimed.account = da;
    let c = fresh(&mut |c| {
        c.signer = mallory.clone();
        hello(c);
        c.proof = SessionProof::Full(claimed.clone());
    });
    rows.push(("delegation signed by another account", vec![one(&c)], RejectReason::DelegationSigner));
    // A's real delegation, but the frame is signed by Mallory's session key.
    let c = fresh(&mut |c| {
        hello(c);
        c.signer = mallory.clone();
    });
    rows.push(("session key not matching the delegation", vec![one(&c)], RejectReason::BadSignature));
    // Mallory's genuine delegation presented as coming from A.
    let c = fresh(&mut |c| {
        c.signer = mallory.clone();
        hello(c);
    });
    rows.push(("delegation of another account than the origin", vec![one(&c)], RejectReason::SessionMismatch));
    let c = fresh(&mut |c| c.proof = SessionProof::Known(0x1234_5678));
    rows.push(("session reference the receiver does not hold", vec![one(&c)], RejectReason::UnknownSession));
    let c = fresh(&mut |c| {
        c.kind = Kind::Hello;
        c.proof = SessionProof::Known(sa.fingerprint());
    });
    rows.push(("hello without a delegation", vec![one(&c)], RejectReason::UnexpectedKind));
    let c = fresh(&mut |_| {});
    let mut f = c.frames().remove(0);
    if let Part::Head(h) = &mut f.part {
        // The wire takes the application's limit plus the body's kind byte.
        h.body_len = (cfg.max_message + 1 + TAG_LEN + 1) as u32;
        h.frames = 2000;
    }
    rows.push(("oversized message", vec![f.encode()], RejectReason::TooLarge));
    let c = fresh(&mut |_| {});
    let bytes = one(&c);
    rows.push(("truncated frame", vec![bytes[..bytes.len() - 150].to_vec()], RejectReason::Malformed));
    // A frame whose first byte names no known format is refused as such (by the ring's
    // decoder, which owns every tag but the routed one) and counted.
    let mut unknown_version = bytes.clone();
    unknown_version[0] = 0x11; // the routed format before header tags
    let malformed = b.ring().stats().malformed;
    assert_eq!(b.handle_frame(now, da, &unknown_version), Err(FrameError::Ring(rings_node::chord::DecodeError::UnsupportedVersion(0x11))));
    assert_eq!(b.ring().stats().malformed, malformed + 1);
    let c = fresh(&mut |c| c.body = vec![0xAB; 2500]);
    let f = c.frames();
    rows.push(("duplicated frame", vec![f[0].encode(), f[1].encode(), f[1].encode()], RejectReason::DuplicateFrame));
    let c = fresh(&mut |c| c.body = vec![0xAB; 2500]);
    let f = c.frames();
    rows.push(("out-of-order frame", vec![f[0].encode(), f[2].encode()], RejectReason::OutOfOrder));
    let c = fresh(&mut |c| c.body = vec![0xAB; 2500]);
    rows.push(("frame of an unknown message", vec![c.frames()[1].encode()], RejectReason::UnknownMessage));
    let c = fresh(&mut |c| c.body = vec![0xAB; 2500]);
    let mut f = c.frames();
    f[2].piece.truncate(10); // the last piece is short of the announced length
    rows.push(("pieces short of the announced length", vec![f[0].encode(), f[1].encode(), f[2].encode()], RejectReason::Truncated));
    // Relayed frames: B is asked to pass them on toward a third DID.
    let elsewhere = Did::from_u64(0xFEED);
    let c = fresh(&mut |c| {
        c.dest = elsewhere;
        c.hop_limit = 3;
        c.path = vec![Did::from_u64(9), da];
    });
    rows.push(("hop limit exceeded", vec![one(&c)], RejectReason::HopLimitExceeded));
    let c = fresh(&mut |c| {
        c.dest = elsewhere;
        c.path = vec![db, da];
    });
    rows.push(("routing loop", vec![one(&c)], RejectReason::RoutingLoop));
    let c = fresh(&mut |c| c.seal = Some((a_b.clone(), 0x5E55_1011))); // for an older session of B
    rows.push(("body sealed for another session of the destination", vec![one(&c)], RejectReason::Undecryptable));

    let mut seen = std::collections::BTreeSet::new();
    for (name, frames, reason) in &rows {
        let before = b.wire().stats().rejected(*reason);
        let (last, rest) = frames.split_last().unwrap();
        for f in rest {
            assert_eq!(b.handle_frame(now, da, f), Ok(()), "{name}: lead-in frame");
        }
        assert_eq!(b.handle_frame(now, da, last), Err(FrameError::Routed(*reason)), "{name}");
        assert_eq!(b.wire().stats().rejected(*reason), before + 1, "{name}: counted");
        seen.insert(format!("{reason:?}"));
        println!("{name:<48} -> {reason:?}");
    }
    assert!(seen.len() >= 20, "distinct reasons: {seen:?}");
    assert_eq!(b.wire().stats().rejected_total(), rows.len() as u64);
    assert_eq!(b.wire().stats().messages_delivered, 2, "only the two honest messages");

    // B told A (signed, routed back) about the failures it can attribute.
    let mut t = now;
    for _ in 0..50 {
        t = Instant(t.0 + 1);
        pump(&mut b, &mut a, t);
        pump(&mut a, &mut b, t);
    }
    let reasons: Vec<RouteError> = std::iter::from_fn(|| a.poll_event())
        .filter_map(|e| match e {
            Event::Undelivered(u) if u.reporter == db => Some(u.reason),
            _ => None,
        })
        .collect();
    for r in [
        RouteError::UnknownSession,
        RouteError::HopLimitExceeded,
        RouteError::RoutingLoop,
        RouteError::Undecryptable,
        RouteError::Incomplete,
    ] {
        assert!(reasons.contains(&r), "A heard {r:?}: {reasons:?}");
    }
}

#[test]
fn a_peer_that_lost_the_session_gets_a_new_one_on_the_next_message() {
    let mut rng = ChaCha20Rng::seed_from_u64(78);
    let sa = session(&mut rng, 1, T0, DAY);
    let sb = session(&mut rng, 1, T0, DAY);
    let (mut a, mut b, mut now) = ring_of_two(sa, sb.clone());
    let run = |a: &mut Node, b: &mut Node, now: &mut Instant| common::run(a, b, now, 50);
    let inbox = |b: &mut Node| -> Vec<Vec<u8>> {
        std::iter::from_fn(|| b.poll_event())
            .filter_map(|e| match e {
                Event::Message(d) => Some(d.body),
                _ => None,
            })
            .collect()
    };
    a.send(now, b.did(), b"one".to_vec()).unwrap();
    run(&mut a, &mut b, &mut now);
    assert_eq!(inbox(&mut b), vec![b"one".to_vec()]);
    // B restarts with a fresh node (same session): it no longer holds A's session.
    let (b_ring_did, old_b) = (b.did(), b);
    let mut b = Node::new(Identity::Session(sb), NodeConfig::default(), [3; 32], now).unwrap();
    assert_eq!(b.did(), b_ring_did);
    b.join(now, a.did());
    drop(old_b);
    common::run(&mut a, &mut b, &mut now, 3_000);
    while a.poll_event().is_some() {}
    let lost = a.send(now, b.did(), b"two".to_vec()).unwrap();
    run(&mut a, &mut b, &mut now);
    let told: Vec<_> = std::iter::from_fn(|| a.poll_event())
        .filter_map(|e| match e {
            Event::Undelivered(u) => Some((u.tx, u.reason)),
            _ => None,
        })
        .collect();
    assert_eq!(told, vec![(lost, RouteError::UnknownSession)], "reported, not silently dropped");
    a.send(now, b.did(), b"three".to_vec()).unwrap();
    run(&mut a, &mut b, &mut now);
    assert_eq!(inbox(&mut b), vec![b"three".to_vec()]);
}
