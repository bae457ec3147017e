#![cfg(not(target_arch = "wasm32"))]
//! Routed messages in the simulator, with real keys: every node has an account and a
//! session, every message is signed, sealed, verified and opened.

use rings_node::sim::scenario::{grow_in_waves, random_lookups, random_messages};
use rings_node::sim::{Sim, SimConfig};
use rings_node::wire::RejectReason;
use rings_node::Duration;

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
    eprintln!(
        "1,000 nodes: {} sent, {} intact, mean hops {:.2}",
        report.sent,
        report.intact,
        report.mean_hops()
    );
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
    // Pick a pair whose route is long: try pairs until a small probe takes >= 3 hops.
    let members = sim.members();
    let (mut a, mut b) = (members[0], members[1]);
    for pair in members.windows(2).step_by(7) {
        let to = sim.node(pair[1]).did();
        sim.send(pair[0], to, b"probe".to_vec()).unwrap();
        sim.run_for(Duration::from_secs(2));
        let d = sim.take_inbox(pair[1]);
        if d.first().is_some_and(|d| d.hops >= 3) {
            (a, b) = (pair[0], pair[1]);
            break;
        }
    }
    let body: Vec<u8> = (0..64u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let to = sim.node(b).did();
    let start = sim.now();
    sim.send(a, to, body.clone()).unwrap();
    let mut got = Vec::new();
    while got.is_empty() && sim.now() < start + Duration::from_secs(60) {
        sim.run_for(Duration::from_millis(100));
        got = sim.take_inbox(b);
    }
    let took = sim.now().saturating_since(start);
    assert_eq!(got.len(), 1, "delivered once");
    assert!(got[0].hops >= 3, "hops {}", got[0].hops);
    assert!(got[0].body == body, "intact");
    eprintln!("64 MiB over {} hops in {} ms of virtual time", got[0].hops, took.as_millis());
    assert_eq!(sim.wire_stats_total().rejected(RejectReason::RelayOverflow), 0);
}
