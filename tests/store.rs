#![cfg(not(target_arch = "wasm32"))]
//! The DHT store in the simulator: replicated, signed records that survive churn.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rings_node::identity::Session;
use rings_node::sim::scenario::grow_in_waves;
use rings_node::sim::{Sim, SimConfig};
use rings_node::store::{GetResult, OpId, PutError, Record, RecordKind, StoreError, StoreEvent};
use rings_node::{Did, Duration, Instant};

mod common;
use common::session;

const HOUR: u64 = 3_600_000;

fn ring(seed: u64, n: usize) -> Sim {
    let mut sim = Sim::new(SimConfig { seed, wire: true, ..SimConfig::default() }).unwrap();
    grow_in_waves(&mut sim, n, 4);
    sim.run_rounds(3);
    assert!(sim.ring_errors().is_zero(), "{:?}", sim.ring_errors());
    sim
}

/// Writers: real accounts with sessions valid around the simulator's clock.
fn writers(sim: &Sim, n: usize, seed: u64) -> Vec<Session> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n).map(|_| session(&mut rng, 1, sim.now().as_millis() - 1000, Duration::from_secs(30 * 86_400))).collect()
}

fn record(w: &Session, now: Instant, name: &str, kind: RecordKind, version: u64, value: &[u8]) -> Record {
    Record::sign(w, Record::key_of(name.as_bytes()), kind, version, now.as_millis() + HOUR, value.to_vec())
}

fn wait(sim: &mut Sim, ix: u32, op: OpId) -> StoreEvent {
    for _ in 0..200 {
        if let Some(e) = sim.take_store_event(ix, op) {
            return e;
        }
        sim.run_for(Duration::from_millis(50));
    }
    panic!("no answer for {op:?}");
}

fn put_result(e: StoreEvent) -> Result<(), PutError> {
    match e {
        StoreEvent::Put { result, .. } => result,
        other => panic!("{other:?}"),
    }
}

fn get_result(e: StoreEvent) -> GetResult {
    match e {
        StoreEvent::Get { result, .. } => result,
        other => panic!("{other:?}"),
    }
}

/// Puts from random nodes land on the key's owner and its two successors (by the
/// oracle), are read back intact from other random nodes, and every bad write is refused
/// with its reason and counted.
#[test]
fn records_are_replicated_read_back_and_bad_writes_refused() {
    let mut sim = ring(11, 60);
    let ws = writers(&sim, 4, 1);
    let now = sim.now();
    let mut names = Vec::new();
    for i in 0..200 {
        let w = &ws[i % ws.len()];
        let name = format!("record-{i}");
        let ix = sim.random_member().unwrap();
        let op = sim.put_record(ix, record(w, now, &name, RecordKind::Value, 1, name.as_bytes()));
        assert_eq!(put_result(wait(&mut sim, ix, op)), Ok(()), "{name}");
        names.push(name);
    }
    sim.run_rounds(12); // replication pushes, stale extra copies lease out
    let counts = sim.replica_counts();
    for name in &names {
        let key = Record::key_of(name.as_bytes());
        assert_eq!(counts.get(&key).copied(), Some(3), "{name}: copies");
        // The holders are the oracle's owner and its next two successors.
        let owner = sim.oracle().successor_of(key).unwrap();
        let owner_ix = sim.index_of(owner).unwrap();
        assert!(!sim.node(owner_ix).store().records_at(key, sim.now()).is_empty(), "{name}: the owner holds it");
        let ix = sim.random_member().unwrap();
        let op = sim.get(ix, key);
        match get_result(wait(&mut sim, ix, op)) {
            GetResult::Found(rs) => assert_eq!(rs[0].value, name.as_bytes(), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    let key0 = Record::key_of(names[0].as_bytes());
    let now = sim.now();
    let ix = sim.random_member().unwrap();
    let mut refusals = Vec::new();
    // A newer version by the writer replaces the value.
    let op = sim.put_record(ix, record(&ws[0], now, &names[0], RecordKind::Value, 2, b"v2"));
    assert_eq!(put_result(wait(&mut sim, ix, op)), Ok(()));
    let bad: Vec<(&str, Record, StoreError)> = vec![
        ("stale version", record(&ws[0], now, &names[0], RecordKind::Value, 1, b"old"), StoreError::Stale),
        ("another writer", record(&ws[1], now, &names[0], RecordKind::Value, 9, b"mine now"), StoreError::NotOwner),
        (
            "forged value",
            {
                let mut r = record(&ws[0], now, &names[0], RecordKind::Value, 3, b"signed");
                r.value = b"changed".to_vec();
                r
            },
            StoreError::BadSignature,
        ),
        ("oversized", record(&ws[0], now, "big", RecordKind::Value, 1, &vec![0u8; (16 << 10) + 1]), StoreError::TooLarge),
        ("expired", Record::sign(&ws[0], Record::key_of(b"old"), RecordKind::Value, 1, now.as_millis() - 1, vec![1]), StoreError::Expired),
        (
            "delegation of another account",
            {
                let mut r = record(&ws[0], now, "claimed", RecordKind::Value, 1, b"x");
                r.writer = ws[2].did();
                r
            },
            StoreError::BadDelegation,
        ),
    ];
    for (what, r, want) in bad {
        let key = r.key;
        let owner = sim.oracle().successor_of(key).unwrap();
        let owner_ix = sim.index_of(owner).unwrap();
        let before = sim.node(owner_ix).store().stats().rejected(want);
        let op = sim.put_record(ix, r);
        assert_eq!(put_result(wait(&mut sim, ix, op)), Err(PutError::Refused(want)), "{what}");
        assert_eq!(sim.node(owner_ix).store().stats().rejected(want), before + 1, "{what}: counted at the owner");
        refusals.push(what);
    }
    let op = sim.get(ix, key0);
    match get_result(wait(&mut sim, ix, op)) {
        GetResult::Found(rs) => assert_eq!((rs.len(), rs[0].value.as_slice(), rs[0].version), (1, &b"v2"[..], 2)),
        other => panic!("{other:?}"),
    }
    // An append-set: three writers add an entry each; a reader gets all three.
    let set = "service:chat";
    for w in &ws[..3] {
        let op = sim.put_record(ix, record(w, now, set, RecordKind::Set, 1, &w.did().to_bytes()));
        assert_eq!(put_result(wait(&mut sim, ix, op)), Ok(()));
    }
    let reader = sim.random_member().unwrap();
    let op = sim.get(reader, Record::key_of(set.as_bytes()));
    match get_result(wait(&mut sim, reader, op)) {
        GetResult::Found(rs) => {
            let mut got: Vec<Did> = rs.iter().map(|r| r.writer).collect();
            got.sort();
            let mut want: Vec<Did> = ws[..3].iter().map(|w| w.did()).collect();
            want.sort();
            assert_eq!(got, want);
        }
        other => panic!("{other:?}"),
    }
    let op = sim.get(reader, Record::key_of(b"never written"));
    assert_eq!(get_result(wait(&mut sim, reader, op)), GetResult::NotFound);
    println!("refused as expected: {refusals:?}");
}
