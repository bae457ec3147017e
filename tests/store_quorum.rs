#![cfg(not(target_arch = "wasm32"))]
//! The write quorum: a put is acknowledged once the owner and a replica hold it.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rings_node::sim::scenario::grow_in_waves;
use rings_node::sim::{Sim, SimConfig};
use rings_node::store::{GetResult, Record, RecordKind, StoreEvent};
use rings_node::Duration;

mod common;
use common::{session, store_event};

/// Before: an owner acknowledged a put as soon as it stored it, with its pushes to the
/// replicas still queued; crashed at that moment, it took the only copy with it. Now the
/// acknowledgement waits for a replica: every acknowledged record outlives its owner.
#[test]
fn an_acknowledged_put_outlives_its_owner_crashing_at_the_acknowledgement() {
    let mut sim = Sim::new(SimConfig { seed: 31, wire: true, ..SimConfig::default() }).unwrap();
    grow_in_waves(&mut sim, 60, 4);
    sim.run_rounds(3);
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    let writer = session(&mut rng, 1, sim.now().as_millis() - 1000, Duration::from_secs(86_400));
    let mut acked = Vec::new();
    for i in 0..20 {
        let key = Record::key_of(format!("durable-{i}").as_bytes());
        let owner = sim.index_of(sim.oracle().successor_of(key).unwrap()).unwrap();
        let r = Record::sign(&writer, key, RecordKind::Value, 1, sim.now().as_millis() + 3_600_000, vec![i as u8]);
        // The owner writes it itself, and crashes the moment it reports the put done.
        let op = sim.put_record(owner, r);
        let done = store_event(&mut sim, owner, op, 1, 5_000);
        let ok = matches!(done, Some(StoreEvent::Put { result: Ok(()), .. }));
        assert!(ok, "put {i}: {done:?}");
        sim.crash(owner);
        acked.push(key);
    }
    sim.run_rounds(6);
    for key in acked {
        let ix = sim.random_member().unwrap();
        let op = sim.get(ix, key);
        let got = store_event(&mut sim, ix, op, 50, 400);
        assert!(matches!(got, Some(StoreEvent::Get { result: GetResult::Found(_), .. })), "{key:?}: {got:?}");
    }
}
