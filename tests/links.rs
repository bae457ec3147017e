//! Link mode in the simulator: every node holds only the links its own link manager
//! opens (a hard cap), each modelled as a WebRTC connection (setup 20–200 ms, 2% of
//! setups failing, a crash noticed after 3 s); ring maintenance, store traffic and
//! routed messages go only over open links, and offers and answers travel through the
//! ring itself. The oracle: the sorted list of live members.

use rings_node::link::LinkConfig;
use rings_node::sim::{scenario, LinkModel, Sim, SimConfig};
use rings_node::Duration;

fn link_sim(seed: u64, cap: usize) -> Sim {
    let model = LinkModel { config: LinkConfig { max_links: cap, max_by_peers: cap / 2, ..LinkConfig::default() }, ..LinkModel::default() };
    Sim::new(SimConfig { seed, identities: true, links: Some(model), ..SimConfig::default() }).expect("valid config")
}

/// Grows the ring to `target` members in waves that at most double it, each new node
/// bootstrapping by hand through a random member; nodes whose bootstrap failed try again.
fn grow(sim: &mut Sim, target: usize) {
    if sim.members().is_empty() {
        sim.spawn(None);
    }
    for _ in 0..200 {
        let size = sim.members().len();
        if size >= target {
            return;
        }
        let pending = sim.unjoined().len();
        for _ in 0..size.min(target - size).saturating_sub(pending) {
            let via = sim.random_member();
            sim.spawn(via);
        }
        sim.run_for(Duration::from_millis(2_000));
        sim.retry_bootstraps();
    }
    panic!("the ring did not grow to {target}: {} members", sim.members().len());
}

#[test]
fn a_link_only_ring_converges_under_the_cap_and_routes_every_message() {
    for seed in 1..=3 {
        let mut sim = link_sim(seed, 32);
        grow(&mut sim, 200);
        let rounds = scenario::rounds_until_converged(&mut sim, 60, false);
        let stats = sim.link_stats().clone();
        assert!(rounds.is_some(), "seed {seed}: ring converged ({:?})", sim.ring_errors());
        assert!(stats.max_held <= 32, "seed {seed}: cap held: {stats:?}");
        assert_eq!(stats.unsolicited, 0, "seed {seed}: {stats:?}");
        let r = scenario::random_messages(&mut sim, 1_000, 64, Duration::from_millis(10_000));
        println!("seed {seed}: converged after {rounds:?} rounds; {stats:?}; messages {r:?}");
        assert_eq!(r.corrupt, 0);
        assert_eq!(r.lost, 0, "seed {seed}: every message delivered or reported: {r:?}");
        assert!(r.intact * 100 >= r.sent * 99, "seed {seed}: ≥ 99% delivered on a stable ring: {r:?}");
    }
}
