#![cfg(not(target_arch = "wasm32"))]
//! Resource and Sybil attacks on the wire: one member with a valid session, or many
//! cheap ones, try to fill a table that honest traffic needs. Each test floods B, then
//! checks that an honest message from A still arrives (the oracle: A's own honest
//! message, built the same way as before the flood).

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rings_node::identity::Session;
use rings_node::wire::frame::{Kind, SessionProof};
use rings_node::wire::{RejectReason, WireConfig};
use rings_node::{Did, Event, Instant, Node, NodeConfig};

mod common;
use common::craft::{app_body, Craft};
use common::{session, DAY, T0};
use rings_node::sim::pair::ring_of_two_with;

struct Setup {
    a: Node,
    b: Node,
    sa: Session,
    sb: Session,
    now: Instant,
    rng: ChaCha20Rng,
    next_tx: u64,
}

impl Setup {
    fn new(seed: u64, cfg: NodeConfig) -> Setup {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (sa, sb) = (session(&mut rng, 1, T0, DAY), session(&mut rng, 1, T0, DAY));
        let (a, b, now) = ring_of_two_with(sa.clone(), sb.clone(), cfg).expect("the test's configuration is valid");
        let mut s = Setup { a, b, sa: sa.clone(), sb, now, rng, next_tx: 1 << 40 };
        s.hello(&sa);
        s
    }

    /// `from`'s signed hello, which opens its session at B.
    fn hello(&mut self, from: &Session) {
        let mut hello = self.data(from, Vec::new());
        hello.kind = Kind::Hello;
        hello.seal = None;
        hello.proof = SessionProof::Full(from.delegation().clone());
        let a = self.a.did();
        assert_eq!(self.feed(a, &hello), Ok(()));
    }

    /// A sealed data message from `from` (whose session B holds) to B, relayed by A.
    fn data(&mut self, from: &Session, body: Vec<u8>) -> Craft {
        self.next_tx += 1;
        let origin = from.did();
        Craft {
            signer: from.clone(),
            seal: Some((from.pair_keys(self.sb.public_key(), self.sb.fingerprint()), self.sb.fingerprint())),
            proof: SessionProof::Known(from.fingerprint()),
            origin,
            dest: self.b.did(),
            tx: self.next_tx,
            network: 1,
            issued_at: self.now.as_millis(),
            ttl: WireConfig::default().ttl.as_millis() as u32,
            kind: Kind::Data,
            hop_limit: 32,
            body,
            piece: 63 << 10,
            path: if origin == self.a.did() { Vec::new() } else { vec![self.a.did()] },
            nonce: [(self.next_tx % 251) as u8; 24],
        }
    }

    /// A fresh account whose session B holds after its signed hello (relayed by A).
    fn member(&mut self) -> Session {
        let s = session(&mut self.rng, 1, T0, DAY);
        self.hello(&s);
        s
    }

    fn feed(&mut self, via: Did, c: &Craft) -> Result<(), rings_node::node::FrameError> {
        let mut last = Ok(());
        for f in c.frames() {
            last = self.b.handle_frame(self.now, via, &f.encode());
        }
        last
    }

    /// Whether an honest message from A reaches B now.
    fn honest_message_arrives(&mut self, len: usize) -> bool {
        let sa = self.sa.clone();
        let c = self.data(&sa, app_body(&vec![0x5A; len]));
        let a = self.a.did();
        let fed = self.feed(a, &c);
        let got = std::iter::from_fn(|| self.b.poll_event()).any(|e| matches!(e, Event::Message(d) if d.from == a && d.body.len() == len));
        fed.is_ok() && got
    }
}

/// Before the fix: 65,537 tiny messages with ttl u32::MAX raised the shared replay floor
/// ~50 days ahead, and B refused everyone's messages as `Replay`. Now the ttl is bounded
/// at every hop, and a flood within the bound moves only the flooder's own floor.
#[test]
fn a_replay_cache_flood_from_one_member_or_a_hundred_leaves_others_judged_by_nothing_it_did() {
    // A cache of 8,192 (a 16th of the default; the rules do not depend on its size)
    // keeps the flood quick.
    let mut cfg = NodeConfig::default();
    cfg.wire.replay_capacity = 8192;
    let capacity = cfg.wire.replay_capacity;
    let mut s = Setup::new(1, cfg);
    assert!(s.honest_message_arrives(10), "positive control");
    let mallory = s.member();
    let a = s.a.did();
    let mut long = s.data(&mallory, vec![1]);
    long.ttl = u32::MAX;
    assert_eq!(s.feed(a, &long), Err(rings_node::node::FrameError::Routed(RejectReason::TtlTooLong)));
    // One member: more messages than the whole cache holds, each with the longest ttl.
    // (Past its share, the flooder's own messages of the same millisecond meet its own
    // floor: that is the only thing its flood moves.)
    for _ in 0..capacity + 1 {
        let c = s.data(&mallory, vec![1]);
        let _ = s.feed(a, &c);
    }
    while s.b.poll_event().is_some() {}
    assert!(s.honest_message_arrives(10), "A's next message is not refused as Replay");
    // A hundred members, each sending its share (1/16 of the cache) and more.
    let sybils: Vec<Session> = (0..100).map(|_| s.member()).collect();
    for m in &sybils {
        for _ in 0..capacity / 16 + 10 {
            let c = s.data(m, vec![2]);
            let _ = s.feed(a, &c);
        }
    }
    while s.b.poll_event().is_some() {}
    for _ in 0..50 {
        assert!(s.honest_message_arrives(10), "honest traffic keeps flowing");
    }
    // An honest origin sending past its own share, a message every 5 ms, loses nothing.
    for _ in 0..capacity / 16 + 100 {
        s.now = Instant(s.now.as_millis() + 5);
        assert!(s.honest_message_arrives(10), "past its share, A's messages still arrive");
    }
    // A replay of the honest messages is still refused.
    let sa = s.sa.clone();
    let c = s.data(&sa, vec![3]);
    assert_eq!(s.feed(a, &c), Ok(()));
    assert_eq!(s.feed(a, &c), Err(rings_node::node::FrameError::Routed(RejectReason::Replay)));
}

/// Before the fix: four unauthenticated 64 MiB hello heads claiming four other accounts
/// held all 256 MiB for 120 s with an empty frame every 15 s, and an honest 200 KB
/// message was refused `ReassemblyFull`. Now a multi-frame head is authenticated on
/// arrival, budgets are per origin, per link and in total, pieces carry ≥ 1 KiB, and a
/// message is dropped at its expiry plus the reassembly timeout however it trickles.
#[test]
fn reassembly_cannot_be_held_with_others_identities_nor_kept_alive_past_its_deadline() {
    let mut s = Setup::new(2, NodeConfig::default());
    let a = s.a.did();
    let cfg = WireConfig::default();
    // Four other members' genuine sessions (their fingerprints are public), claimed by
    // Mallory for 64 MiB data heads: each first frame is refused at once.
    let mallory = s.member();
    let others: Vec<Session> = (0..4).map(|_| s.member()).collect();
    for o in &others {
        let mut c = s.data(o, vec![0; 64 << 20]);
        c.seal = Some((mallory.pair_keys(s.sb.public_key(), s.sb.fingerprint()), s.sb.fingerprint()));
        let head = c.frames().remove(0).encode();
        assert_eq!(s.b.handle_frame(s.now, a, &head), Err(rings_node::node::FrameError::Routed(RejectReason::BadSignature)));
    }
    assert_eq!(s.b.wire().held().2, 0, "nothing held for forged heads");
    // Mallory and three Sybils of its own, all over the same link, start 64 MiB messages
    // and keep them alive with one 1 KiB piece every 15 s.
    let sybils: Vec<Session> = (0..3).map(|_| s.member()).chain([mallory]).collect();
    let mut held = Vec::new();
    for m in &sybils {
        let c = s.data(m, vec![0; 64 << 20]);
        let mut frames = c.frames();
        frames.truncate(20);
        let r = s.b.handle_frame(s.now, a, &frames[0].encode());
        held.push((r, frames));
    }
    let admitted = held.iter().filter(|(r, _)| r.is_ok()).count();
    let each = (64 << 20) + rings_node::identity::pair::TAG_LEN;
    assert_eq!(admitted, cfg.reassembly_per_link / each, "one link holds at most its share: {admitted}");
    assert!(s.b.wire().held().2 <= cfg.reassembly_per_link);
    // An honest 200 KB message from A (its own link) is admitted meanwhile.
    assert!(s.honest_message_arrives(200_000));
    let start = s.now;
    let mut seq = 1;
    while s.now.as_millis() < start.as_millis() + 120_000 {
        s.now = Instant(s.now.as_millis() + 15_000);
        for (r, frames) in &held {
            if r.is_ok() && seq < frames.len() {
                let _ = s.b.handle_frame(s.now, a, &frames[seq].encode());
            }
        }
        seq += 1;
        s.b.handle_timeout(s.now);
    }
    let deadline = rings_node::Duration(cfg.ttl.as_millis() + cfg.reassembly_timeout.as_millis());
    assert!(s.now.as_millis() - start.as_millis() > deadline.as_millis());
    assert_eq!(s.b.wire().held().1, 0, "every trickled message dropped by its deadline ({} ms)", deadline.as_millis());
    assert_eq!(s.b.wire().held().2, 0);
    assert!(s.honest_message_arrives(200_000));
}
