#![cfg(not(target_arch = "wasm32"))]
//! Bad input from peers and from configuration: typed errors, counted, never a panic.

use rings_node::chord::message::{Check, FindSuccessor, Message, WIRE_VERSION};
use rings_node::chord::{Config, ConfigError, DecodeError, Event, LookupError, Node};
use rings_node::sim::scenario::{grow_in_waves, random_lookups, rounds_until_converged};
use rings_node::sim::{Sim, SimConfig};
use rings_node::{Did, Instant, SeededRng};

fn node(v: u64) -> Node {
    Node::new(Did::from_u64(v), Config::default(), 1, Instant(0)).unwrap()
}

fn drain(n: &mut Node) -> (Vec<(Did, Message)>, Vec<Event>) {
    let mut t = Vec::new();
    while let Some(x) = n.poll_transmit() {
        t.push((x.to, x.message));
    }
    let mut e = Vec::new();
    while let Some(x) = n.poll_event() {
        e.push(x);
    }
    (t, e)
}

#[test]
fn out_of_range_configuration_is_rejected_with_the_field_named() {
    let bad = Config { successors: 100, ..Config::default() };
    match Node::new(Did::ZERO, bad, 0, Instant(0)) {
        Err(ConfigError::OutOfRange { field: "successors", value: 100, .. }) => {}
        other => panic!("{other:?}"),
    }
    let bad = SimConfig { node: Config { fingers_per_round: 0, ..Config::default() }, ..SimConfig::default() };
    assert!(matches!(Sim::new(bad), Err(ConfigError::OutOfRange { field: "fingers_per_round", .. })));
}

#[test]
fn malformed_frames_are_counted_and_dropped() {
    let mut n = node(100);
    let peer = Did::from_u64(7);
    assert_eq!(n.handle_frame(Instant(1), peer, &[]), Err(DecodeError::Empty));
    assert_eq!(n.handle_frame(Instant(1), peer, &[42]), Err(DecodeError::UnsupportedVersion(42)));
    assert_eq!(n.handle_frame(Instant(1), peer, &[WIRE_VERSION, 0xff, 0xff]), Err(DecodeError::Malformed));
    assert_eq!(n.stats().malformed, 3);
    assert_eq!(drain(&mut n), (vec![], vec![]));
}

#[test]
fn unsolicited_replies_and_self_messages_are_counted() {
    let mut n = node(100);
    let peer = Did::from_u64(7);
    n.handle_message(Instant(1), peer, Message::HopAck { tag: 5 });
    n.handle_message(Instant(1), peer, Message::Found { tag: 9, key: Did::ZERO, owner: peer, hops: 1 });
    n.handle_message(Instant(1), peer, Message::StabilizeReply { tag: 3, predecessor: None, successors: vec![Did::MAX] });
    n.handle_message(Instant(1), peer, Message::Pong { tag: 4, predecessor: Some(Did::MAX) });
    assert_eq!(n.stats().unexpected, 4);
    assert_eq!(n.successor(), None, "an unsolicited reply changes nothing");
    n.handle_message(Instant(1), n.did(), Message::HopAck { tag: 1 });
    assert_eq!(n.stats().invalid, 1);
}

#[test]
fn a_request_over_the_hop_limit_is_refused_back_to_the_peer_that_sent_it() {
    let mut n = node(100);
    let peer = Did::from_u64(7);
    let find = FindSuccessor { tag: 1, key: Did::from_u64(50), hops: 200, check: Check::Route, join: false };
    n.handle_message(Instant(1), peer, Message::FindSuccessor(find));
    let (sent, _) = drain(&mut n);
    assert_eq!(
        sent,
        vec![
            (peer, Message::HopAck { tag: 1 }),
            (peer, Message::Failed { tag: 1, key: Did::from_u64(50), reason: rings_node::chord::FailReason::HopLimitExceeded })
        ],
        "the answer goes back to the peer that handed the request over, nowhere else"
    );
    assert_eq!(n.stats().hop_limit_exceeded, 1);
}

#[test]
fn calls_in_the_wrong_state_fail_with_typed_events() {
    let mut n = node(100);
    let id = n.join(Instant(0), n.did());
    assert!(matches!(drain(&mut n).1.as_slice(), [Event::JoinFailed { id: i, error: LookupError::Unreachable }] if *i == id));
    n.leave(Instant(0));
    let id = n.lookup(Instant(0), Did::ZERO);
    assert!(matches!(drain(&mut n).1.as_slice(), [Event::LookupFailed { id: i, error: LookupError::NotJoined, .. }] if *i == id));
    assert_eq!(n.poll_timeout(), None);
}

#[test]
fn a_join_through_a_silent_node_is_retried_with_backoff_then_fails() {
    let mut n = node(100);
    let via = Did::from_u64(9);
    let id = n.join(Instant(0), via);
    let mut attempts = 0;
    let mut sends = Vec::new();
    let mut events = Vec::new();
    while let Some(t) = n.poll_timeout() {
        if t > Instant(60_000) || !events.is_empty() {
            break;
        }
        let (sent, ev) = drain(&mut n);
        for (to, m) in sent {
            if matches!(m, Message::FindSuccessor(_)) {
                assert_eq!(to, via);
                attempts += 1;
                sends.push(t.as_millis());
            }
        }
        events.extend(ev);
        n.handle_timeout(t);
    }
    events.extend(drain(&mut n).1);
    let cfg = Config::default();
    assert_eq!(events, vec![Event::JoinFailed { id, error: LookupError::Unreachable }]);
    assert_eq!(attempts, cfg.join_attempts as usize, "every attempt went out: {sends:?}");
    let gaps: Vec<u64> = sends.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "backoff grows: {gaps:?}");
    assert!(n.stats().join_retries == cfg.join_attempts as u64 - 1);
}

/// Random well-formed messages from strangers, and random frames, hammer a live ring;
/// nothing panics and the ring still answers every lookup correctly afterwards.
#[test]
fn a_ring_under_garbage_stays_correct() {
    let mut sim = Sim::new(SimConfig { seed: 5, ..SimConfig::default() }).unwrap();
    grow_in_waves(&mut sim, 100, 2);
    rounds_until_converged(&mut sim, 20, false).expect("converges");
    let mut rng = SeededRng::new(99);
    let members = sim.members();
    for i in 0..50_000u64 {
        let to = members[rng.below(members.len() as u64) as usize];
        let from = rng.did(); // strangers, not ring members
        if i % 2 == 0 {
            let len = rng.below(80) as usize;
            let mut frame: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if let Some(b) = frame.first_mut() {
                *b = WIRE_VERSION;
            }
            sim.inject_frame(to, from, frame);
        } else {
            let msg = match rng.below(5) {
                0 => Message::HopAck { tag: rng.next_u64() },
                1 => Message::Found { tag: rng.next_u64(), key: rng.did(), owner: rng.did(), hops: rng.next_u64() as u8 },
                2 => Message::Failed { tag: rng.next_u64(), key: rng.did(), reason: rings_node::chord::FailReason::Unreachable },
                3 => Message::StabilizeReply {
                    tag: rng.next_u64(),
                    predecessor: Some(rng.did()),
                    successors: vec![rng.did(); rng.below(300) as usize],
                },
                _ => Message::FindSuccessor(FindSuccessor {
                    tag: rng.next_u64(),
                    key: rng.did(),
                    hops: rng.next_u64() as u8,
                    check: [Check::Route, Check::Owner, Check::PassedBack][rng.below(3) as usize],
                    join: rng.below(2) == 0,
                }),
            };
            sim.inject_message(to, from, msg);
        }
    }
    sim.run_rounds(3);
    let totals = sim.node_stats_total();
    assert!(totals.malformed > 0 && totals.unexpected > 0, "{totals:?}");
    rounds_until_converged(&mut sim, 10, false).expect("still a correct ring");
    let report = random_lookups(&mut sim, 2_000);
    assert_eq!(report.correct, report.issued, "wrong {} failed {}", report.wrong, report.failed);
}
