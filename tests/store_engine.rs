#![cfg(not(target_arch = "wasm32"))]
//! The store engine inside a node: one table of verified delegations shared with the
//! wire, and lookups for the store answered to the store (never the application).

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use rings_node::chord;
use rings_node::sim::pair::{ring_of_two, run, session, DAY, T0};
use rings_node::store::{GetResult, Record, RecordKind, StoreEvent};
use rings_node::{Duration, Event, Node};

fn events(n: &mut Node) -> Vec<Event> {
    std::iter::from_fn(|| n.poll_event()).collect()
}

#[test]
fn a_writer_s_delegation_is_verified_once_for_its_messages_and_records() {
    for seed in 1..=4u64 {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (sa, sb) = (session(&mut rng, 1, T0, DAY), session(&mut rng, 1, T0, DAY));
        let (mut a, mut b, mut now) = ring_of_two(sa, sb);
        let before = b.wire().vouched().verified();
        // A message from A: B checks A's delegation.
        a.send(now, b.did(), b"hello".to_vec()).expect("sent");
        run(&mut a, &mut b, &mut now, 500, None);
        assert!(events(&mut b).iter().any(|e| matches!(e, Event::Message(d) if d.body == b"hello")), "seed {seed}");
        assert_eq!(b.wire().vouched().verified(), before + 1, "seed {seed}");
        // Records from A, under the same delegation: B (owner or replica in a ring of
        // two) stores them, checking each signature but not the delegation again.
        let mut held = 0;
        for i in 0..6 {
            let key = Record::key_of(format!("k{seed}-{i}").as_bytes());
            a.put(now, key, RecordKind::Value, vec![i; 8], Duration::from_secs(600)).expect("put");
            run(&mut a, &mut b, &mut now, 1_000, None);
            held += usize::from(!b.store().records_at(key, now).is_empty());
        }
        assert_eq!(held, 6, "seed {seed}: B holds every record");
        assert_eq!(b.wire().vouched().verified(), before + 1, "seed {seed}: A's delegation checked once at B");
        assert_eq!(b.store().stats().rejected_total(), 0, "seed {seed}");
        // Records of a writer B never heard from: the store checks its delegation in the
        // same table, once for all of them.
        let c = session(&mut rng, 1, T0, DAY);
        for i in 0..3u8 {
            let key = Record::key_of(format!("c{seed}-{i}").as_bytes());
            let wall = now.as_millis();
            let r = Record::sign(&c, key, RecordKind::Value, wall, wall + 600_000, vec![i]);
            let _ = a.put_record(now, r);
            run(&mut a, &mut b, &mut now, 1_000, None);
            assert!(!b.store().records_at(key, now).is_empty(), "seed {seed}: B holds C's record {i}");
        }
        assert_eq!(b.wire().vouched().verified(), before + 2, "seed {seed}: C's delegation checked once at B");
    }
}

#[test]
fn the_store_s_lookups_never_reach_the_application() {
    for seed in 1..=4u64 {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (sa, sb) = (session(&mut rng, 1, T0, DAY), session(&mut rng, 1, T0, DAY));
        let (mut a, mut b, mut now) = ring_of_two(sa, sb);
        let _ = events(&mut a);
        // Keys on both sides of the ring: those B owns need a lookup from A.
        let keys: Vec<_> = (0..16).map(|i| Record::key_of(format!("s{seed}-{i}").as_bytes())).collect();
        let remote = keys.iter().filter(|k| !a.ring().table().owns(**k)).count();
        assert!(remote > 0, "seed {seed}: some keys are B's");
        let puts: Vec<_> =
            keys.iter().map(|k| a.put(now, *k, RecordKind::Value, b"v".to_vec(), Duration::from_secs(600)).expect("put")).collect();
        // The application looks one key up itself, beside the store's own lookups.
        let mine = a.lookup(now, keys[0]);
        run(&mut a, &mut b, &mut now, 2_000, None);
        let gets: Vec<_> = keys.iter().map(|k| a.get(now, *k)).collect();
        run(&mut a, &mut b, &mut now, 2_000, None);
        let seen = events(&mut a);
        let lookups: Vec<_> = seen
            .iter()
            .filter_map(|e| match e {
                Event::Ring(chord::Event::LookupDone { id, .. } | chord::Event::LookupFailed { id, .. }) => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(lookups, vec![mine], "seed {seed}: only the application's own lookup is reported");
        let ended =
            |op| seen.iter().find(|e| matches!(e, Event::Store(StoreEvent::Put { op: o, .. } | StoreEvent::Get { op: o, .. }) if *o == op));
        for op in puts {
            assert!(matches!(ended(op), Some(Event::Store(StoreEvent::Put { result: Ok(()), .. }))), "seed {seed}: {:?}", ended(op));
        }
        for op in gets {
            assert!(
                matches!(ended(op), Some(Event::Store(StoreEvent::Get { result: GetResult::Found(_), .. }))),
                "seed {seed}: {:?}",
                ended(op)
            );
        }
    }
}

/// A node that leaves while its reads are still looking up their keys' owners answers
/// each of them at once (no route), instead of leaving them to time out.
#[test]
fn reads_looking_for_an_owner_end_when_the_node_leaves() {
    use rings_node::sim::scenario::grow_in_waves;
    use rings_node::sim::{Sim, SimConfig};
    for seed in 1..=3u64 {
        let mut sim = Sim::new(SimConfig { seed, wire: true, ..SimConfig::default() }).expect("valid config");
        grow_in_waves(&mut sim, 24, 4);
        sim.run_rounds(3);
        let ops: Vec<_> = (0..16).map(|i| sim.get(0, Record::key_of(format!("r{seed}-{i}").as_bytes()))).collect();
        // Some reads ended at once (this node owns the key, or knows its owner); the others
        // wait on the ring's lookups, which the leave cuts short.
        let pending: Vec<_> = ops.into_iter().filter(|&op| sim.take_store_event(0, op).is_none()).collect();
        assert!(!pending.is_empty(), "seed {seed}: every read ended without a lookup; the test shows nothing");
        sim.leave(0);
        for op in pending {
            match sim.take_store_event(0, op) {
                Some(StoreEvent::Get { result: GetResult::NoRoute, .. }) => {}
                other => panic!("seed {seed}: {op:?} ended {other:?} at the leave"),
            }
        }
    }
}
