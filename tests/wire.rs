#![cfg(not(target_arch = "wasm32"))]
//! Routed messages in the simulator, with real keys: every node has an account and a
//! session, every message is signed, sealed, verified and opened.

use rings_node::sim::scenario::{grow_in_waves, large_transfer, random_lookups, random_messages};
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
