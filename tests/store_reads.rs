#![cfg(not(target_arch = "wasm32"))]
//! Quorum reads: a `get` is answered with the freshest copy among the owner and a
//! replica, and the copies it found stale or missing are repaired on the way.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rings_node::sim::scenario::grow_in_waves;
use rings_node::sim::{Sim, SimConfig};
use rings_node::store::{GetResult, Record, RecordKind, StoreEvent, StoreMsg};
use rings_node::{Did, Duration};

mod common;
use common::{session, store_event};

const HOUR: u64 = 3_600_000;

/// The key's owner and its two successors, by the oracle.
fn replica_set(sim: &Sim, key: Did) -> [u32; 3] {
    let o = sim.oracle();
    let owner = o.successor_of(key).unwrap();
    let s1 = o.successor_after(owner).unwrap();
    let s2 = o.successor_after(s1).unwrap();
    [owner, s1, s2].map(|d| sim.index_of(d).unwrap())
}

fn held(sim: &Sim, ix: u32, key: Did) -> Vec<(Did, u64)> {
    sim.node(ix).store().iter().filter(|r| r.key == key).map(|r| (r.writer, r.version)).collect()
}

fn get(sim: &mut Sim, key: Did) -> Vec<Record> {
    let ix = sim.random_member().unwrap();
    let op = sim.get(ix, key);
    match store_event(sim, ix, op, 5, 2_000) {
        Some(StoreEvent::Get { result: GetResult::Found(rs), .. }) => rs,
        other => panic!("{other:?}"),
    }
}

/// Before: a `get` was answered by the owner alone, so a newer version its replicas held
/// (an owner back from a partition, or a newcomer given the key with an old copy) was
/// not read until the periodic handover happened to bring it up. Now the owner asks its
/// replicas, answers with the freshest once one of them answered (with a write quorum of
/// 2 of 3, a read quorum of 2 always meets a copy of the latest acknowledged write), and
/// every copy in the replica set holds it right after the read — a set entry one
/// replica lacked too. Swept over seeds and over which replica lacks the entry.
#[test]
fn a_get_returns_the_freshest_copy_and_repairs_the_others() {
    for seed in 0..8u64 {
        let mut sim = Sim::new(SimConfig { seed: 60 + seed, wire: true, ..SimConfig::default() }).unwrap();
        grow_in_waves(&mut sim, 40, 4);
        sim.run_rounds(3);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let network = SimConfig::default().wire_config.network;
        let ws: Vec<_> = (0..2).map(|_| session(&mut rng, network, sim.now().as_millis() - 1_000, Duration::from_secs(86_400))).collect();
        let expires = sim.now().as_millis() + HOUR;
        // A value at version 1 everywhere; version 2 at both replicas, not the owner.
        let key = Record::key_of(format!("value-{seed}").as_bytes());
        let v1 = Record::sign(&ws[0], key, RecordKind::Value, 1, expires, b"old".to_vec());
        let ix = sim.random_member().unwrap();
        let op = sim.put_record(ix, v1);
        assert!(matches!(store_event(&mut sim, ix, op, 5, 2_000), Some(StoreEvent::Put { result: Ok(()), .. })));
        sim.run_rounds(1);
        let set = replica_set(&sim, key);
        assert!(set.iter().all(|&i| held(&sim, i, key) == vec![(ws[0].did(), 1)]), "seed {seed}: version 1 on the replica set");
        let owner_did = sim.node(set[0]).did();
        let v2 = Record::sign(&ws[0], key, RecordKind::Value, 2, expires, b"new".to_vec());
        for &replica in &set[1..] {
            sim.inject_frame(replica, owner_did, StoreMsg::Replicate { records: vec![v2.clone()] }.encode());
        }
        // A set entry the owner and one replica have, not the other replica.
        let skey = Record::key_of(format!("set-{seed}").as_bytes());
        let mine = Record::sign(&ws[0], skey, RecordKind::Set, 1, expires, b"a".to_vec());
        let op = sim.put_record(ix, mine);
        assert!(matches!(store_event(&mut sim, ix, op, 5, 2_000), Some(StoreEvent::Put { result: Ok(()), .. })));
        sim.run_rounds(1);
        let sset = replica_set(&sim, skey);
        let theirs = Record::sign(&ws[1], skey, RecordKind::Set, 1, expires, b"b".to_vec());
        let (sowner, lucky) = (sset[0], sset[1 + (seed as usize % 2)]);
        let sowner_did = sim.node(sowner).did();
        // (To the owner as if handed up by its successor.)
        sim.inject_frame(sowner, sim.node(sset[1]).did(), StoreMsg::Replicate { records: vec![theirs.clone()] }.encode());
        sim.inject_frame(lucky, sowner_did, StoreMsg::Replicate { records: vec![theirs] }.encode());

        let got = get(&mut sim, key);
        assert_eq!((got.len(), got[0].version, got[0].value.as_slice()), (1, 2, &b"new"[..]), "seed {seed}: the freshest version");
        let mut entries: Vec<Vec<u8>> = get(&mut sim, skey).into_iter().map(|r| r.value).collect();
        entries.sort();
        assert_eq!(entries, vec![b"a".to_vec(), b"b".to_vec()], "seed {seed}: every entry of the set");
        // Right after the reads (well before a periodic push), the whole set holds them.
        sim.run_for(Duration::from_millis(150));
        for &i in &set {
            assert_eq!(held(&sim, i, key), vec![(ws[0].did(), 2)], "seed {seed}: node {i} repaired");
        }
        for &i in &sset {
            assert_eq!(held(&sim, i, skey).len(), 2, "seed {seed}: node {i} holds both entries");
        }
    }
}

/// Before: once 1,024 reads waited for replicas at an owner, every further read was
/// answered from the owner's copy alone. 100 Sybil members keep the table full (11 reads
/// each, whose replica answers are lost) and an honest reader's `get` still gets a quorum
/// read: the newer version its replicas hold. One peer alone cannot fill the table (64
/// reads at most).
#[test]
fn a_crowd_of_readers_cannot_keep_a_lone_reader_from_its_quorum() {
    for (seed, flooders) in [(0u64, 100usize), (1, 1), (2, 100)] {
        let mut sim = Sim::new(SimConfig { seed: 70 + seed, wire: true, ..SimConfig::default() }).unwrap();
        grow_in_waves(&mut sim, 160, 8);
        sim.run_rounds(3);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let network = SimConfig::default().wire_config.network;
        let w = session(&mut rng, network, sim.now().as_millis() - 1_000, Duration::from_secs(86_400));
        let expires = sim.now().as_millis() + HOUR;
        let key = Record::key_of(format!("crowded-{seed}").as_bytes());
        let ix = sim.random_member().unwrap();
        let op = sim.put_record(ix, Record::sign(&w, key, RecordKind::Value, 1, expires, b"old".to_vec()));
        assert!(matches!(store_event(&mut sim, ix, op, 5, 2_000), Some(StoreEvent::Put { result: Ok(()), .. })));
        sim.run_rounds(1);
        let set = replica_set(&sim, key);
        let dids = set.map(|i| sim.node(i).did());
        let v2 = Record::sign(&w, key, RecordKind::Value, 2, expires, b"new".to_vec());
        for &replica in &set[1..] {
            sim.inject_frame(replica, dids[0], StoreMsg::Replicate { records: vec![v2.clone()] }.encode());
        }
        // The crowd's reads: their peeks are lost for 100 ms, so they wait for their
        // 4 s deadline, holding their places.
        let until = rings_node::Instant(sim.now().as_millis() + 100);
        sim.cut(dids[0], dids[1], until);
        sim.cut(dids[0], dids[2], until);
        let reader = sim.members().into_iter().find(|i| !set.contains(i)).unwrap();
        let crowd: Vec<Did> =
            sim.members().into_iter().filter(|i| !set.contains(i) && *i != reader).take(flooders).map(|i| sim.node(i).did()).collect();
        let mut n = 0u64;
        for _ in 0..(1_100 / flooders).max(11) {
            for &f in &crowd {
                n += 1;
                sim.inject_frame(set[0], f, StoreMsg::Get { op: n, key }.encode());
            }
        }
        sim.run_for(Duration::from_millis(101));
        let op = sim.get(reader, key);
        match store_event(&mut sim, reader, op, 5, 2_000) {
            Some(StoreEvent::Get { result: GetResult::Found(rs), .. }) => {
                assert_eq!(rs[0].value, b"new".to_vec(), "seed {seed}, {flooders} flooders: the quorum's version")
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Before: with `read_quorum = 3` a read waited for two replica answers but counted one
/// (the answers were forgotten once repaired) and was never answered; and a replica
/// reading the key was left out of the read, its own copy unheard. Now a read quorum of 3
/// meets a newer version held by one replica alone, and with the default quorum a
/// replica that reads meets its own copy.
#[test]
fn every_quorum_is_answered_and_a_reading_replica_counts() {
    for seed in 0..6u64 {
        let quorum = if seed % 2 == 0 { 3 } else { 2 };
        let store = rings_node::store::StoreConfig { read_quorum: quorum, ..Default::default() };
        let mut sim = Sim::new(SimConfig { seed: 90 + seed, wire: true, store, ..SimConfig::default() }).unwrap();
        grow_in_waves(&mut sim, 40, 4);
        sim.run_rounds(3);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let network = SimConfig::default().wire_config.network;
        let w = session(&mut rng, network, sim.now().as_millis() - 1_000, Duration::from_secs(86_400));
        let expires = sim.now().as_millis() + HOUR;
        let key = Record::key_of(format!("one-replica-{seed}").as_bytes());
        let ix = sim.random_member().unwrap();
        let op = sim.put_record(ix, Record::sign(&w, key, RecordKind::Value, 1, expires, b"old".to_vec()));
        assert!(matches!(store_event(&mut sim, ix, op, 5, 2_000), Some(StoreEvent::Put { result: Ok(()), .. })));
        sim.run_rounds(1);
        let set = replica_set(&sim, key);
        // The newer version at one replica only (the last one, or the reader).
        let lucky = set[2 - (seed as usize / 2 % 2)];
        let v2 = Record::sign(&w, key, RecordKind::Value, 2, expires, b"new".to_vec());
        sim.inject_frame(lucky, sim.node(set[0]).did(), StoreMsg::Replicate { records: vec![v2] }.encode());
        let reader = if quorum == 3 { sim.members().into_iter().find(|i| !set.contains(i)).unwrap() } else { lucky };
        let op = sim.get(reader, key);
        match store_event(&mut sim, reader, op, 5, 2_000) {
            Some(StoreEvent::Get { result: GetResult::Found(rs), .. }) => {
                assert_eq!(rs[0].value, b"new".to_vec(), "seed {seed}, read quorum {quorum}, reader {reader} (replica set {set:?})")
            }
            other => panic!("seed {seed}, read quorum {quorum}: {other:?}"),
        }
    }
}
