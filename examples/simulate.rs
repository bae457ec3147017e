//! Ring benchmark: grow a simulated ring, let it converge, answer random lookups.
//!
//! cargo run --release --example simulate -- --nodes 10000 [--lookups 10000] [--seed 1]
//!     [--settle 2] [--max-rounds 200] [--loss PPM] [--wire] [--json]
//!
//! Growth: the ring grows in waves that at most double it, every new node joining
//! through a random member, with `--settle` stabilization rounds after each wave.
//! Convergence is counted in rounds (one stabilization interval, 1 s of virtual time)
//! after the last wave: first until every successor and predecessor equals the oracle's,
//! then until every finger does. Lookups are issued all at once from random members.
// The simulator is native-only: built for wasm32 (`wasm-pack test`), this example is empty.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

use std::process::ExitCode;
use std::time::Instant as WallClock;

use rings_node::sim::scenario::{grow_in_waves, random_lookups, rounds_until_converged};
use rings_node::sim::{Sim, SimConfig};

struct Args {
    nodes: usize,
    lookups: usize,
    seed: u64,
    settle: u64,
    max_rounds: u64,
    loss_ppm: u32,
    wire: bool,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { nodes: 1000, lookups: 10_000, seed: 1, settle: 2, max_rounds: 200, loss_ppm: 0, wire: false, json: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.replace('_', "").parse::<u64>().map_err(|_| format!("{name}: not a number: {v}"))
        };
        match flag.as_str() {
            "--nodes" => a.nodes = value("--nodes")? as usize,
            "--lookups" => a.lookups = value("--lookups")? as usize,
            "--seed" => a.seed = value("--seed")?,
            "--settle" => a.settle = value("--settle")?,
            "--max-rounds" => a.max_rounds = value("--max-rounds")?,
            "--loss" => a.loss_ppm = u32::try_from(value("--loss")?).map_err(|_| "--loss too large")?,
            "--wire" => a.wire = true,
            "--json" => a.json = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.nodes < 2 {
        return Err("--nodes must be at least 2".into());
    }
    if a.loss_ppm > 1_000_000 {
        return Err("--loss is in parts per million (0..=1000000)".into());
    }
    Ok(a)
}

/// Peak resident memory of this process in bytes (Linux), if known.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("usage: simulate --nodes N [--lookups L] [--seed S] [--settle R] [--max-rounds R] [--loss PPM] [--wire] [--json]");
            return ExitCode::from(2);
        }
    };
    let cfg = SimConfig { seed: args.seed, loss_ppm: args.loss_ppm, wire: args.wire, ..SimConfig::default() };
    let mut sim = match Sim::new(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let wall = WallClock::now();
    let failed_joins = grow_in_waves(&mut sim, args.nodes, args.settle);
    let grow_secs = wall.elapsed().as_secs_f64();
    let msgs_grow = sim.stats().sent;

    let ring_rounds = rounds_until_converged(&mut sim, args.max_rounds, false);
    let finger_rounds = rounds_until_converged(&mut sim, args.max_rounds, true);
    let msgs_converge = sim.stats().sent - msgs_grow;
    let converge_secs = wall.elapsed().as_secs_f64() - grow_secs;
    let members = sim.oracle().len();
    let mem_per_node = sim.mean_node_memory();

    // Background cost of a converged ring: every message of 30 idle rounds (finger
    // sweeps pause while they find nothing new, so a short window would mislead).
    const IDLE_ROUNDS: u64 = 30;
    let idle_start = sim.stats().sent;
    sim.run_rounds(IDLE_ROUNDS);
    let msgs_per_node_round = (sim.stats().sent - idle_start) as f64 / (IDLE_ROUNDS as f64 * members as f64);

    let t_lookups = WallClock::now();
    let report = random_lookups(&mut sim, args.lookups);
    let lookup_secs = t_lookups.elapsed().as_secs_f64();
    let total_secs = wall.elapsed().as_secs_f64();
    let log2n = (members as f64).log2();
    let peak = peak_rss().unwrap_or(0);
    let fmt_rounds = |r: Option<u64>| r.map_or("not converged".to_string(), |r| r.to_string());

    if args.json {
        println!(
            "{{\"nodes\":{members},\"seed\":{},\"failed_joins\":{failed_joins},\"ring_rounds\":{},\"finger_rounds\":{},\
\"lookups\":{},\"lookup_success\":{:.6},\"wrong\":{},\"failed\":{},\"mean_hops\":{:.3},\"p99_hops\":{},\"half_log2_n\":{:.3},\
\"messages_grow\":{msgs_grow},\"messages_converge\":{msgs_converge},\"idle_messages_per_node_round\":{:.2},\
\"wall_grow_s\":{grow_secs:.2},\"wall_converge_s\":{converge_secs:.2},\"wall_lookups_s\":{lookup_secs:.2},\"wall_total_s\":{total_secs:.2},\
\"peak_rss_bytes\":{peak},\"core_state_bytes_per_node\":{mem_per_node},\"virtual_time_s\":{:.1}}}",
            args.seed,
            ring_rounds.map_or(-1, |r| r as i64),
            finger_rounds.map_or(-1, |r| r as i64),
            report.issued,
            report.success_rate(),
            report.wrong,
            report.failed,
            report.mean_hops(),
            report.percentile_hops(0.99),
            log2n / 2.0,
            msgs_per_node_round,
            sim.now().as_millis() as f64 / 1000.0,
        );
    } else {
        println!("rings-node ring simulation (seed {}, {} ms rounds, latency 5-50 ms)", args.seed, sim.round_length().as_millis());
        println!("| measure | value |");
        println!("|---|---|");
        println!("| nodes (members at end) | {members} |");
        println!("| failed joins | {failed_joins} |");
        println!("| rounds until successors & predecessors correct | {} |", fmt_rounds(ring_rounds));
        println!("| further rounds until every finger correct | {} |", fmt_rounds(finger_rounds));
        println!(
            "| lookups: issued / correct / wrong / failed | {} / {} / {} / {} |",
            report.issued, report.correct, report.wrong, report.failed
        );
        println!("| lookup success | {:.4}% |", 100.0 * report.success_rate());
        println!("| hops: mean / p99 (½·log2 N = {:.2}) | {:.3} / {} |", log2n / 2.0, report.mean_hops(), report.percentile_hops(0.99));
        println!("| messages: growth / convergence | {msgs_grow} / {msgs_converge} |");
        println!("| idle maintenance: messages per node per round (30 rounds) | {msgs_per_node_round:.2} |");
        println!("| wall time: growth / convergence / lookups / total | {grow_secs:.1} s / {converge_secs:.1} s / {lookup_secs:.1} s / {total_secs:.1} s |");
        println!("| peak memory (process RSS) | {:.1} MiB ({:.0} B per node) |", peak as f64 / 1048576.0, peak as f64 / members as f64);
        println!("| core state per node (estimate) | {mem_per_node} B |");
        println!("| virtual time simulated | {:.0} s |", sim.now().as_millis() as f64 / 1000.0);
    }
    if ring_rounds.is_none() || report.success_rate() < 1.0 {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
