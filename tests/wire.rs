#![cfg(not(target_arch = "wasm32"))]
//! Routed messages in the simulator, with real keys: every node has an account and a
//! session, every message is authenticated and sealed end to end.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rings_node::sim::scenario::{grow_in_waves, large_transfer, random_lookups, random_messages};
use rings_node::sim::{Sim, SimConfig};
use rings_node::wire::RejectReason;
use rings_node::{Did, Duration, Event, Instant, Node};

mod common;
use common::{ring_of_two, session, DAY, T0};

fn sim_with_identities(seed: u64) -> Sim {
    Sim::new(SimConfig { seed, identities: true, wire: true, ..SimConfig::default() }).unwrap()
}

#[test]
fn thousand_nodes_with_real_crypto_route_every_message_intact_and_verified() {
    let mut sim = sim_with_identities(3);
    assert_eq!(grow_in_waves(&mut sim, 1000, 4), 0);
    sim.run_rounds(5);
    let lookups = random_lookups(&mut sim, 1000);
    assert_eq!(lookups.correct, lookups.issued, "{lookups:?}");

    let report = random_messages(&mut sim, 2000, 100, Duration::from_secs(5));
    eprintln!("1,000 nodes: {} sent, {} intact, mean hops {:.2}", report.sent, report.intact, report.mean_hops());
    assert_eq!(report.intact, report.sent, "{report:?}");
    // A second batch of 1 KB messages (new pairs open sessions, known ones reuse them).
    let again = random_messages(&mut sim, 2000, 1000, Duration::from_secs(5));
    assert_eq!(again.intact, again.sent, "{again:?}");

    let w = sim.wire_stats_total();
    eprintln!("wire totals: {w:?}");
    assert_eq!(w.rejected_total(), 0, "nothing refused in a healthy ring");
    assert_eq!(w.messages_delivered, report.intact + again.intact);
    // Every delivered message was verified, and so was every hello and hello reply.
    assert!(w.verified >= w.messages_delivered, "{w:?}");
    assert_eq!(w.undelivered, 0);
    assert!(report.mean_hops() > 1.5, "messages really cross the ring: {}", report.mean_hops());
}

#[test]
fn a_64_mib_message_crosses_three_or_more_hops_intact() {
    let mut sim = sim_with_identities(5);
    grow_in_waves(&mut sim, 200, 4);
    sim.run_rounds(3);
    let r = large_transfer(&mut sim, 3, 64 << 20, Duration::from_secs(60));
    assert!(r.intact, "{r:?}");
    assert!(r.hops.is_some_and(|h| h >= 3), "{r:?}");
    eprintln!("64 MiB over {:?} hops in {} ms of virtual time", r.hops, r.took.as_millis());
    assert_eq!(sim.wire_stats_total().rejected(RejectReason::RelayOverflow), 0);
}

/// Moves `x`'s transmits to `y` and tells `x` each was sent (the link drained at once).
fn pump_with_credit(x: &mut Node, y: &mut Node, now: Instant) -> usize {
    let mut n = 0;
    while let Some(t) = x.poll_transmit() {
        let bytes = t.frame.encode();
        let _ = y.handle_frame(now, x.did(), &bytes);
        x.handle_sent(now, t.to, bytes.len());
        n += 1;
    }
    n
}

fn messages_from(n: &mut Node, from: Did) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| n.poll_event())
        .filter_map(|e| match e {
            Event::Message(d) if d.from == from => Some(d.body),
            _ => None,
        })
        .collect()
}

/// A burst of sends larger than the link window is not sealed up front: only what the
/// window takes (plus the message being framed) becomes frames; the rest is sealed as
/// the link drains, arrives intact and in order. Data still waiting when its link goes
/// down is routed anew or reported, never lost silently.
#[test]
fn a_burst_is_sealed_as_the_link_drains_and_nothing_waiting_is_lost() {
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    let (mut a, mut b, mut now) = ring_of_two(session(&mut rng, 1, T0, DAY), session(&mut rng, 1, T0, DAY));
    let (da, db) = (a.did(), b.did());
    a.send(now, db, b"open the session".to_vec()).unwrap();
    for _ in 0..20 {
        now = Instant(now.0 + 1);
        pump_with_credit(&mut a, &mut b, now);
        pump_with_credit(&mut b, &mut a, now);
    }
    assert_eq!(messages_from(&mut b, da), vec![b"open the session".to_vec()]);

    let cfg = a.wire().config().clone();
    let size = 100 << 10;
    let per_message = (size + 16usize).div_ceil(cfg.piece) as u64;
    let burst: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; size]).collect();
    let before = a.wire().stats().frames_sent;
    for body in &burst {
        a.send(now, db, body.clone()).unwrap();
    }
    let framed = (a.wire().stats().frames_sent - before) / per_message;
    // What the window holds, plus the message partly in it.
    let window_messages = (cfg.link_window / size) as u64 + 1;
    assert!(framed <= window_messages, "{framed} messages framed up front (the window holds {window_messages})");
    for _ in 0..200 {
        now = Instant(now.0 + 1);
        pump_with_credit(&mut a, &mut b, now);
        pump_with_credit(&mut b, &mut a, now);
    }
    assert!(messages_from(&mut b, da) == burst, "40 × 100 KiB intact and in order");

    // Another burst, and B's link goes down before any credit returns.
    while a.poll_event().is_some() {}
    let txs: Vec<u64> = burst.iter().map(|body| a.send(now, db, body.clone()).unwrap()).collect();
    a.handle_peer_down(now, db);
    let reported: Vec<u64> = std::iter::from_fn(|| a.poll_event())
        .filter_map(|e| match e {
            Event::Undelivered(u) => Some(u.tx),
            _ => None,
        })
        .collect();
    let framed_first = txs.len() - reported.len();
    assert!(framed_first >= 1 && framed_first < txs.len(), "{framed_first} of {} were framed before the link fell", txs.len());
    assert_eq!(reported, txs[framed_first..].to_vec(), "each waiting message reported once, in order");
}
