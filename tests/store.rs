#![cfg(not(target_arch = "wasm32"))]
//! The DHT store in the simulator: replicated, signed records that survive churn.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rings_node::identity::Session;
use rings_node::sim::scenario::grow_in_waves;
use rings_node::sim::{Sim, SimConfig};
use rings_node::store::{GetResult, OpId, PutError, Record, RecordKind, StoreError, StoreEvent};
use rings_node::{Did, Duration, Instant};
use std::collections::HashMap;

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
    common::store_event(sim, ix, op, 50, 200).unwrap_or_else(|| panic!("no answer for {op:?}"))
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

/// Nodes to crash this round: `count` random members, never every live copy a record
/// has in its replica set (the key's owner and next two successors, by the oracle) —
/// "never r simultaneous failures in one replica set", counting failures not yet
/// repaired. Copies outside the set (on their way out) do not count.
fn victims(sim: &mut Sim, count: usize, keys: &[Did]) -> Vec<u32> {
    let wanted: std::collections::HashSet<Did> = keys.iter().copied().collect();
    let now = sim.now().as_millis();
    let mut holders: HashMap<Did, Vec<u32>> = HashMap::new();
    for ix in sim.members() {
        let mut mine: Vec<Did> =
            sim.node(ix).store().iter().filter(|r| r.expires_at >= now && wanted.contains(&r.key)).map(|r| r.key).collect();
        mine.dedup();
        for k in mine {
            holders.entry(k).or_default().push(ix);
        }
    }
    // The copies that count, by key; and the keys each node guards.
    let mut left: HashMap<Did, usize> = HashMap::new();
    let mut guards: HashMap<u32, Vec<Did>> = HashMap::new();
    for (k, hs) in &holders {
        let o = sim.oracle();
        let owner = o.successor_of(*k).unwrap();
        let s1 = o.successor_after(owner).unwrap();
        let set = [owner, s1, o.successor_after(s1).unwrap()];
        let mut counted: Vec<u32> = hs.iter().copied().filter(|ix| set.contains(&sim.node(*ix).did())).collect();
        if counted.is_empty() {
            counted = hs.clone(); // only stray copies left: all of them count
        }
        left.insert(*k, counted.len());
        for ix in counted {
            guards.entry(ix).or_default().push(*k);
        }
    }
    let mut out = Vec::new();
    let mut tries = 0;
    while out.len() < count && tries < count * 20 {
        tries += 1;
        let Some(ix) = sim.random_member() else { break };
        let mine = guards.get(&ix).cloned().unwrap_or_default();
        if out.contains(&ix) || mine.iter().any(|k| left[k] <= 1) {
            continue;
        }
        for k in &mine {
            *left.get_mut(k).unwrap() -= 1;
        }
        out.push(ix);
    }
    out
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// 10,000 nodes, 10,000 records, r = 3; every churn round 5% of the nodes crash (never a
/// whole replica set) and as many join, 50 rounds: no record is ever without a live
/// copy, every one reads back at the end, and the copies return to 3 after each round.
/// Then a whole replica set crashes at once: its records are reported missing (`NotFound`),
/// exactly those, and nothing else is lost.
#[test]
fn records_survive_churn_and_a_lost_replica_set_is_reported() {
    let (n, records, rounds) = (env("STORE_NODES", 10_000), env("STORE_RECORDS", 10_000), env("STORE_ROUNDS", 50));
    let t0 = std::time::Instant::now();
    let mut sim = ring(21, n);
    let ws = writers(&sim, 20, 2);
    let now = sim.now();
    let keys: Vec<Did> = (0..records).map(|i| Record::key_of(format!("churn-{i}").as_bytes())).collect();
    let mut ops = Vec::new();
    for i in 0..records {
        let ix = sim.random_member().unwrap();
        let r = record(&ws[i % ws.len()], now, &format!("churn-{i}"), RecordKind::Value, 1, &(i as u32).to_be_bytes());
        ops.push((ix, sim.put_record(ix, r)));
        if i % 500 == 499 {
            sim.run_for(Duration::from_millis(100));
        }
    }
    sim.run_rounds(3);
    let failed =
        ops.iter().filter(|(ix, op)| !matches!(sim.take_store_event(*ix, *op), Some(StoreEvent::Put { result: Ok(()), .. }))).count();
    assert_eq!(failed, 0, "every put acknowledged");
    sim.run_rounds(12);
    let counts = sim.replica_counts();
    assert!(keys.iter().all(|k| counts.get(k) == Some(&3)), "3 copies each before churn");
    let loaded = t0.elapsed();

    let per_round = n / 20;
    let mut worst_min = usize::MAX;
    let mut short_after: Vec<usize> = Vec::new();
    for round in 0..rounds {
        let counts = sim.replica_counts();
        let gone: Vec<&Did> = keys.iter().filter(|k| !counts.contains_key(k)).collect();
        assert!(gone.is_empty(), "before round {round}'s crashes, records without a copy: {gone:?}");
        for ix in victims(&mut sim, per_round, &keys) {
            sim.crash(ix);
        }
        for _ in 0..per_round {
            let via = sim.random_member();
            sim.spawn(via);
        }
        // Right after the crashes: every record still has a live copy.
        let counts = sim.replica_counts();
        let min = keys.iter().map(|k| counts.get(k).copied().unwrap_or(0)).min().unwrap_or(0);
        assert!(min >= 1, "round {round}: a record lost every copy; records under 3 copies after earlier rounds: {short_after:?}");
        worst_min = worst_min.min(min);
        sim.run_rounds(5);
        let counts = sim.replica_counts();
        short_after.push(keys.iter().filter(|k| counts.get(k).copied().unwrap_or(0) < 3).count());
        if std::env::var("STORE_DEBUG").is_ok() {
            let mut rej = [0u64; StoreError::COUNT];
            let (mut acc, mut refr, mut leased, mut evicted) = (0, 0, 0, 0);
            for ix in sim.members() {
                let st = sim.node(ix).store().stats();
                for (a, b) in rej.iter_mut().zip(st.rejected.iter()) {
                    *a += b;
                }
                acc += st.accepted;
                refr += st.refreshed;
                leased += st.lease_dropped;
                evicted += st.evicted;
            }
            println!("round {round}: accepted {acc} refreshed {refr} leased-out {leased} evicted {evicted} rejected {rej:?}");
            for k in keys.iter().filter(|k| counts.get(k).copied().unwrap_or(0) < 3).take(3) {
                let o = sim.oracle();
                let owner = o.successor_of(*k).unwrap();
                let s1 = o.successor_after(owner).unwrap();
                let s2 = o.successor_after(s1).unwrap();
                let p = o.predecessor_before(owner).unwrap();
                let name = |d: Did| {
                    if d == owner {
                        "O".to_string()
                    } else if d == s1 {
                        "S1".into()
                    } else if d == s2 {
                        "S2".into()
                    } else if d == p {
                        "P".into()
                    } else {
                        format!("{d}")
                    }
                };
                let holders: Vec<String> = sim.holders_of(*k).into_iter().map(name).collect();
                let view = |d: Did| {
                    let t = sim.node(sim.index_of(d).unwrap()).ring().table();
                    format!(
                        "pred {:?} succ {:?}",
                        t.predecessor().map(name),
                        t.successors().iter().take(3).map(|x| name(*x)).collect::<Vec<_>>()
                    )
                };
                println!("round {round}: key {k} short, holders {holders:?}; O: {}; S1: {}; S2: {}", view(owner), view(s1), view(s2));
            }
        }
    }
    sim.run_rounds(6);
    let counts = sim.replica_counts();
    let short = keys.iter().filter(|k| counts.get(k).copied().unwrap_or(0) < 3).count();
    for k in keys.iter().filter(|k| counts.get(k).copied().unwrap_or(0) < 3).take(3) {
        let o = sim.oracle();
        let owner = o.successor_of(*k).unwrap();
        let s1 = o.successor_after(owner).unwrap();
        let s2 = o.successor_after(s1).unwrap();
        let name = |d: Did| {
            if d == owner {
                "O".to_string()
            } else if d == s1 {
                "S1".into()
            } else if d == s2 {
                "S2".into()
            } else {
                format!("{d}")
            }
        };
        let holders: Vec<String> = sim.holders_of(*k).into_iter().map(name).collect();
        let view = |d: Did| {
            let t = sim.node(sim.index_of(d).unwrap()).ring().table();
            format!("pred {:?} succ {:?}", t.predecessor().map(name), t.successors().iter().take(3).map(|x| name(*x)).collect::<Vec<_>>())
        };
        println!("still short: {k} holders {holders:?}; O: {}; S1: {}; S2: {}", view(owner), view(s1), view(s2));
    }
    let mut readable = 0;
    for (i, k) in keys.iter().enumerate() {
        let ix = sim.random_member().unwrap();
        let op = sim.get(ix, *k);
        if i % 200 == 199 {
            sim.run_for(Duration::from_millis(200));
        }
        ops.push((ix, op));
    }
    sim.run_rounds(3);
    let gets = ops.split_off(records);
    for (i, (ix, op)) in gets.iter().enumerate() {
        match sim.take_store_event(*ix, *op) {
            Some(StoreEvent::Get { result: GetResult::Found(rs), .. }) if rs[0].value == (i as u32).to_be_bytes() => readable += 1,
            other => panic!("record {i}: {other:?}"),
        }
    }
    let per_node = sim.records_per_node();
    let mean = per_node.iter().sum::<usize>() as f64 / per_node.len() as f64;
    let mut sorted = per_node.clone();
    sorted.sort();
    let (max, p99) = (sorted[sorted.len() - 1], sorted[sorted.len() * 99 / 100]);
    println!(
        "{n} nodes, {records} records, {rounds} rounds of {per_round} crashes + {per_round} joins: fewest live copies of any record right after a round's crashes {worst_min}; records under 3 copies 5 stabilization rounds after each round: max {} (mean {:.1}); at the end {short}; readable {readable}/{records}; copies per node mean {mean:.1}, p99 {p99} ({:.2}× mean), max {max} ({:.2}× mean); load {:.1} s, total {:.1} s",
        short_after.iter().max().unwrap_or(&0),
        short_after.iter().sum::<usize>() as f64 / short_after.len().max(1) as f64,
        p99 as f64 / mean,
        max as f64 / mean,
        loaded.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(readable, records, "100% readable after churn");
    assert_eq!(short, 0, "every record back to 3 copies");

    // A whole replica set crashes at once: its records are lost, reported as NotFound.
    let key = keys[0];
    let owner = sim.oracle().successor_of(key).unwrap();
    let s1 = sim.oracle().successor_after(owner).unwrap();
    let s2 = sim.oracle().successor_after(s1).unwrap();
    let set = [owner, s1, s2];
    let doomed: Vec<usize> =
        keys.iter().enumerate().filter(|(_, k)| sim.oracle().successor_of(**k) == Some(owner)).map(|(i, _)| i).collect();
    for d in set {
        let ix = sim.index_of(d).unwrap();
        sim.crash(ix);
    }
    sim.run_rounds(8);
    let counts = sim.replica_counts();
    let lost: Vec<usize> = keys.iter().enumerate().filter(|(_, k)| !counts.contains_key(k)).map(|(i, _)| i).collect();
    assert!(lost.iter().all(|i| doomed.contains(i)), "only the crashed set's records are lost");
    assert!(!doomed.is_empty() && lost.len() >= doomed.len(), "the crashed set held {} records", doomed.len());
    for &i in &doomed {
        let ix = sim.random_member().unwrap();
        let op = sim.get(ix, keys[i]);
        sim.run_rounds(2);
        let got = sim.take_store_event(ix, op);
        assert!(matches!(got, Some(StoreEvent::Get { result: GetResult::NotFound, .. })), "record {i}: {got:?}");
    }
    println!(
        "a crashed replica set (owner + 2 successors): its {} records are reported NotFound; the other {} are intact",
        doomed.len(),
        records - lost.len()
    );
}

/// Answers from nodes that were not asked are ignored: a forged acknowledgement does not
/// end a put, and a forged (empty) answer does not end a get as `NotFound` (it did
/// before: answers were matched by id alone).
#[test]
fn spoofed_answers_do_not_end_operations() {
    use rings_node::store::StoreMsg;
    let mut sim = ring(12, 40);
    let ws = writers(&sim, 2, 5);
    let now = sim.now();
    // Another key with a record, and a victim node with a put and a get in flight.
    let other = record(&ws[1], now, "other", RecordKind::Value, 1, b"not what you asked for");
    let ix0 = sim.random_member().unwrap();
    let op = sim.put_record(ix0, other.clone());
    assert_eq!(put_result(wait(&mut sim, ix0, op)), Ok(()));
    let victim = sim.random_member().unwrap();
    let victim_did = sim.node(victim).did();
    let key = Record::key_of(b"wanted");
    let put = sim.put_record(victim, record(&ws[0], now, "wanted", RecordKind::Value, 1, b"real"));
    // A peer (not the key's owner) claims the put was refused, knowing the op id.
    let owner = sim.oracle().successor_of(key).unwrap();
    let liar = sim.members().into_iter().map(|i| sim.node(i).did()).find(|d| *d != owner && *d != victim_did).unwrap();
    let ack = StoreMsg::PutAck { op: put.0, result: Err(StoreError::NotOwner) };
    sim.inject_frame(victim, liar, ack.encode());
    assert_eq!(put_result(wait(&mut sim, victim, put)), Ok(()), "the owner's answer, not the liar's");
    // A get in flight; a peer that is not the owner asked answers it first, with a
    // genuine record (an empty answer would read as NotFound), and asks the victim to
    // peek at another key under the get's id (the answer goes to the liar).
    let get = sim.get(victim, key);
    let forged = StoreMsg::GetReply { op: get.0, records: vec![] };
    sim.inject_frame(victim, liar, forged.encode());
    sim.inject_frame(victim, liar, StoreMsg::Peek { op: get.0, key: other.key }.encode());
    sim.run_for(Duration::from_millis(1));
    sim.inject_frame(victim, liar, forged.encode());
    match get_result(wait(&mut sim, victim, get)) {
        GetResult::Found(rs) => assert_eq!((rs.len(), rs[0].key, rs[0].value.as_slice()), (1, key, &b"real"[..])),
        other => panic!("{other:?}"),
    }
}
