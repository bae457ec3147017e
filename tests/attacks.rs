#![cfg(not(target_arch = "wasm32"))]
//! Attacks on the wire, table-driven: each crafted frame is refused with its own typed
//! reason, and counted. Two real nodes (A and B, direct neighbours in a ring of two) and
//! frames built here by hand, independently of the sender's code path.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rings_node::identity::{ecies, AccountKind, LocalAccount, Session};
use rings_node::node::FrameError;
use rings_node::wire::frame::{seal_aad, Frame, Header, Kind, Part, SessionProof, Signing};
use rings_node::wire::{RejectReason, RouteError, WireConfig};
use rings_node::{Did, Event, Identity, Instant, Node, NodeConfig};

mod common;
use common::{pump, ring_of_two, session, DAY, T0};

/// A message built by hand: what an honest sender would put on the wire, unless a
/// field is changed before or after signing.
#[derive(Clone)]
struct Craft {
    signer: Session,
    proof: SessionProof,
    origin: Did,
    dest: Did,
    tx: u64,
    network: u32,
    issued_at: u64,
    ttl: u32,
    kind: Kind,
    hop_limit: u8,
    body: Vec<u8>,
    piece: usize,
    path: Vec<Did>,
}

impl Craft {
    fn frames(&self) -> Vec<Frame> {
        let pieces: Vec<&[u8]> = if self.body.is_empty() { vec![&[][..]] } else { self.body.chunks(self.piece).collect() };
        let mut header = Header {
            network: self.network,
            session: self.proof.clone(),
            issued_at: self.issued_at,
            ttl: self.ttl,
            kind: self.kind,
            body_len: self.body.len() as u32,
            frames: pieces.len() as u32,
            signature: Default::default(),
        };
        let fp = match &self.proof {
            SessionProof::Full(d) => d.fingerprint(),
            SessionProof::Known(fp) => *fp,
        };
        let mut s = Signing::start(self.origin, self.dest, self.tx, self.hop_limit, &header, fp);
        s.body(&self.body);
        header.signature = self.signer.sign(&s.finish());
        pieces
            .iter()
            .enumerate()
            .map(|(i, p)| Frame {
                origin: self.origin,
                dest: self.dest,
                tx: self.tx,
                hop_limit: self.hop_limit,
                path: self.path.clone(),
                seq: i as u32,
                part: if i == 0 { Part::Head(header.clone()) } else { Part::More },
                piece: p.to_vec(),
            })
            .collect()
    }
}

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
    let b_key = *sb.public_key();
    let cfg = WireConfig::default();
    let ttl = cfg.ttl.as_millis() as u32;
    let skew = cfg.skew.as_millis();

    let mut next_tx = 1000u64;
    let mut sealed = |tx: u64, plain: &[u8]| ecies::seal(&mut rng, &b_key, &seal_aad(da, tx), plain);
    let honest = |tx: u64, body: Vec<u8>| Craft {
        signer: sa.clone(),
        proof: SessionProof::Full(sa.delegation().clone()),
        origin: da,
        dest: db,
        tx,
        network: 1,
        issued_at: now.as_millis(),
        ttl,
        kind: Kind::Data,
        hop_limit: 32,
        body,
        piece: 1000,
        path: Vec::new(),
    };
    let one = |c: &Craft| c.frames().remove(0).encode();

    // Positive controls first: an honest single-frame and three-frame message arrive.
    let tx = next_tx;
    next_tx += 1;
    let valid = honest(tx, sealed(tx, b"hello B"));
    let valid_bytes = one(&valid);
    assert_eq!(b.handle_frame(now, da, &valid_bytes), Ok(()));
    let tx3 = next_tx;
    next_tx += 1;
    let three = honest(tx3, sealed(tx3, &[7u8; 2500]));
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
    let c = fresh(&mut |_| {});
    let mut f = c.frames().remove(0);
    if let Part::Head(h) = &mut f.part {
        h.signature.r = [0x42; 32]; // not made by any key
    }
    rows.push(("forged signature", vec![f.encode()], RejectReason::BadSignature));
    let c = fresh(&mut |_| {});
    let mut f = c.frames().remove(0);
    f.piece[10] ^= 1;
    rows.push(("tampered body", vec![f.encode()], RejectReason::BadSignature));
    let c = fresh(&mut |_| {});
    let mut f = c.frames().remove(0);
    if let Part::Head(h) = &mut f.part {
        h.ttl += 1000; // a relay trying to extend a message's life
    }
    rows.push(("tampered header", vec![f.encode()], RejectReason::BadSignature));
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
        c.proof = SessionProof::Full(old.delegation().clone());
    });
    rows.push(("expired delegation", vec![one(&c)], RejectReason::DelegationExpired));
    // Mallory's account signs a delegation that claims to be A's.
    let mut claimed = mallory.delegation().clone();
    claimed.account = da;
    let c = fresh(&mut |c| {
        c.signer = mallory.clone();
        c.proof = SessionProof::Full(claimed.clone());
    });
    rows.push(("delegation signed by another account", vec![one(&c)], RejectReason::DelegationSigner));
    // A's real delegation, but the frame is signed by Mallory's session key.
    let c = fresh(&mut |c| c.signer = mallory.clone());
    rows.push(("session key not matching the delegation", vec![one(&c)], RejectReason::BadSignature));
    // Mallory's genuine delegation presented as coming from A.
    let c = fresh(&mut |c| {
        c.signer = mallory.clone();
        c.proof = SessionProof::Full(mallory.delegation().clone());
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
        h.body_len = (cfg.max_message + ecies::OVERHEAD + 1) as u32;
        h.frames = 2000;
    }
    rows.push(("oversized message", vec![f.encode()], RejectReason::TooLarge));
    let c = fresh(&mut |_| {});
    let bytes = one(&c);
    rows.push(("truncated frame", vec![bytes[..bytes.len() - 150].to_vec()], RejectReason::Malformed));
    // A frame whose first byte names no known format is refused as such (by the ring's
    // decoder, which owns every tag but the routed one) and counted.
    let mut unknown_version = bytes.clone();
    unknown_version[0] = 0x12;
    let malformed = b.ring().stats().malformed;
    assert_eq!(b.handle_frame(now, da, &unknown_version), Err(FrameError::Ring(rings_node::chord::DecodeError::UnsupportedVersion(0x12))));
    assert_eq!(b.ring().stats().malformed, malformed + 1);
    let c = fresh(&mut |c| c.piece = 80);
    let f = c.frames();
    rows.push(("duplicated frame", vec![f[0].encode(), f[1].encode(), f[1].encode()], RejectReason::DuplicateFrame));
    let c = fresh(&mut |c| c.piece = 80);
    let f = c.frames();
    rows.push(("out-of-order frame", vec![f[0].encode(), f[2].encode()], RejectReason::OutOfOrder));
    let c = fresh(&mut |c| c.piece = 80);
    rows.push(("frame of an unknown message", vec![c.frames()[1].encode()], RejectReason::UnknownMessage));
    let c = fresh(&mut |c| c.piece = 80);
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
    let c = fresh(&mut |c| c.body = vec![1, 2, 3, 4]); // not sealed to B
    rows.push(("body not sealed to the destination", vec![one(&c)], RejectReason::Undecryptable));

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
