//! DHT store benchmark in the simulator: put / get latency (lookup hops and virtual
//! milliseconds, links of 5–50 ms one way), records checked per second of wall time,
//! bytes per stored record, and how evenly records spread over the nodes.
//!
//! cargo run --release --example store_bench [-- --nodes 10000 --records 10000]
// The simulator is native-only: built for wasm32 (`wasm-pack test`), this example is empty.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

use std::process::ExitCode;
use std::time::Instant as WallClock;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rings_node::sim::pair::session;
use rings_node::sim::scenario::grow_in_waves;
use rings_node::sim::{Sim, SimConfig};
use rings_node::store::{GetResult, OpId, Record, RecordKind, StoreEvent};
use rings_node::{Duration, Instant};

fn parse_args() -> Result<(usize, usize), String> {
    let (mut nodes, mut records) = (10_000usize, 10_000usize);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let n: usize = v.parse().map_err(|_| format!("{flag}: not a number: {v}"))?;
        match flag.as_str() {
            "--nodes" if n >= 10 => nodes = n,
            "--records" if n >= 10 => records = n,
            other => return Err(format!("unknown or out-of-range argument {other} {v}")),
        }
    }
    Ok((nodes, records))
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Latencies and hops of finished operations; what is still pending stays.
#[derive(Default)]
struct Tally {
    pending: Vec<(u32, OpId, Instant)>,
    hops: Vec<f64>,
    ms: Vec<f64>,
    failed: usize,
}

impl Tally {
    fn collect(&mut self, sim: &mut Sim) {
        let now = sim.now();
        let (hops, ms, failed) = (&mut self.hops, &mut self.ms, &mut self.failed);
        self.pending.retain(|&(ix, op, t0)| match sim.take_store_event(ix, op) {
            Some(StoreEvent::Put { hops: h, result: Ok(()), .. }) | Some(StoreEvent::Get { hops: h, result: GetResult::Found(_), .. }) => {
                hops.push(h as f64);
                ms.push((now.0 - t0.0) as f64);
                false
            }
            Some(_) => {
                *failed += 1;
                false
            }
            None => true,
        });
    }

    /// Runs one operation every 10 ms of virtual time, checking for answers every ms.
    fn run(sim: &mut Sim, n: usize, mut start: impl FnMut(&mut Sim, usize) -> (u32, OpId)) -> Tally {
        let mut t = Tally::default();
        for i in 0..n {
            let (ix, op) = start(sim, i);
            t.pending.push((ix, op, sim.now()));
            for _ in 0..10 {
                sim.run_for(Duration::from_millis(1));
                t.collect(sim);
            }
        }
        while !t.pending.is_empty() {
            sim.run_for(Duration::from_millis(1));
            t.collect(sim);
        }
        t
    }
}

fn main() -> ExitCode {
    let (nodes, records) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\nusage: store_bench [--nodes 10000] [--records 10000]");
            return ExitCode::from(2);
        }
    };
    let mut sim = match Sim::new(SimConfig { seed: 7, wire: true, ..SimConfig::default() }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e:?}");
            return ExitCode::FAILURE;
        }
    };
    let grown = WallClock::now();
    grow_in_waves(&mut sim, nodes, 4);
    sim.run_rounds(3);
    let grow_s = grown.elapsed().as_secs_f64();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let writers: Vec<_> = (0..20).map(|_| session(&mut rng, 1, sim.now().as_millis() - 1000, Duration::from_secs(86_400))).collect();
    let now = sim.now();
    let value = [0x5Au8; 100];
    let recs: Vec<Record> = (0..records)
        .map(|i| {
            let key = Record::key_of(format!("bench-{i}").as_bytes());
            Record::sign(&writers[i % writers.len()], key, RecordKind::Value, 1, now.as_millis() + 3_600_000, value.to_vec())
        })
        .collect();
    let record_bytes = recs[0].encoded_len();

    // Puts from random nodes, 100 per virtual second.
    let wall = WallClock::now();
    let mut puts = Tally::run(&mut sim, records, |sim, i| {
        let ix = sim.random_member().expect("members");
        (ix, sim.put_record(ix, recs[i].clone()))
    });
    let put_wall = wall.elapsed().as_secs_f64();
    sim.run_rounds(12);
    // Gets of every record from other random nodes.
    let wall = WallClock::now();
    let mut gets = Tally::run(&mut sim, records, |sim, i| {
        let ix = sim.random_member().expect("members");
        (ix, sim.get(ix, recs[i].key))
    });
    let get_wall = wall.elapsed().as_secs_f64();

    let copies = sim.records_per_node();
    let mean = copies.iter().sum::<usize>() as f64 / copies.len() as f64;
    let mut c: Vec<f64> = copies.iter().map(|&x| x as f64).collect();
    let (p99, max) = (percentile(&mut c, 0.99), percentile(&mut c, 1.0));
    let held: usize = copies.iter().sum();
    let stored_bytes: usize = sim.members().iter().map(|&ix| sim.node(ix).store().bytes()).sum();
    // Primary records per node (the owner's share, before replication).
    let mut owned = std::collections::HashMap::new();
    for r in &recs {
        if let Some(o) = sim.oracle().successor_of(r.key) {
            *owned.entry(o).or_insert(0usize) += 1;
        }
    }
    let mut per_owner: Vec<f64> = sim.members().iter().map(|&ix| *owned.get(&sim.node(ix).did()).unwrap_or(&0) as f64).collect();
    let owner_mean = records as f64 / per_owner.len() as f64;
    let (op99, omax) = (percentile(&mut per_owner, 0.99), percentile(&mut per_owner, 1.0));

    println!("## DHT store in the simulator ({nodes} nodes, {records} records of 100 B, r = 3, links 5–50 ms one way)\n");
    println!("| operation | lookup hops mean / p99 | latency mean / p50 / p99 (virtual) | failed | records per wall second |");
    println!("|---|---:|---:|---:|---:|");
    let (put_failed, get_failed) = (puts.failed, gets.failed);
    for (name, t, wall) in [("put", &mut puts, put_wall), ("get", &mut gets, get_wall)] {
        let (hops, ms, failed) = (&mut t.hops, &mut t.ms, t.failed);
        let hm = hops.iter().sum::<f64>() / hops.len().max(1) as f64;
        let mm = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
        println!(
            "| {name} | {hm:.2} / {:.0} | {mm:.0} / {:.0} / {:.0} ms | {failed} | {:.0} |",
            percentile(hops, 0.99),
            percentile(ms, 0.5),
            percentile(ms, 0.99),
            records as f64 / wall
        );
    }
    println!("\nA record with a 100 B value is {record_bytes} B encoded (key, kind, writer, version, expiry, the writer's 132 B delegation, a 64 B signature); {held} copies hold {stored_bytes} B ({:.0} B per copy).", stored_bytes as f64 / held.max(1) as f64);
    println!("\n| load balance | mean | p99 | max | p99 / mean | max / mean |\n|---|---:|---:|---:|---:|---:|");
    println!("| records owned per node | {owner_mean:.2} | {op99:.0} | {omax:.0} | {:.2} | {:.2} |", op99 / owner_mean, omax / owner_mean);
    println!("| copies held per node (r = 3) | {mean:.2} | {p99:.0} | {max:.0} | {:.2} | {:.2} |", p99 / mean, max / mean);
    println!("\nWall time: ring of {nodes} grown in {grow_s:.1} s; puts {put_wall:.1} s; gets {get_wall:.1} s (one core, signatures checked at every copy).");
    if put_failed + get_failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
