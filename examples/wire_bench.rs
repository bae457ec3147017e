//! Wire benchmark: crypto operations per second, envelope bytes per message, and a large
//! transfer through the simulator.
//!
//! cargo run --release --example wire_bench [-- --ms 1000 --mib 64]
//!
//! `--ms`: how long each crypto operation is repeated; `--mib`: size of the simulated
//! transfer (over at least 3 hops of a 200-node ring, 100 Mbit/s links, real keys).
// The simulator is native-only: built for wasm32 (`wasm-pack test`), this example is empty.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

use std::process::ExitCode;
use std::time::Instant as WallClock;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rings_node::bench::crypto_ops;
use rings_node::sim::pair::{ring_of_two, run, session, DAY, T0};
use rings_node::sim::scenario::{grow_in_waves, large_transfer};
use rings_node::sim::{Sim, SimConfig};
use rings_node::wire::frame::{Frame, Kind, ROUTED_TAG};
use rings_node::{Did, Duration, Node};

fn parse_args() -> Result<(f64, usize), String> {
    let (mut ms, mut mib) = (1000.0, 64usize);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let n: u64 = v.parse().map_err(|_| format!("{flag}: not a number: {v}"))?;
        match flag.as_str() {
            "--ms" => ms = n as f64,
            "--mib" if (1..=64).contains(&n) => mib = n as usize,
            "--mib" => return Err("--mib must be 1..=64".into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok((ms, mib))
}

/// The routed frames `origin` put on the link among `log`, with their kinds.
fn routed_from(log: &[Vec<u8>], origin: Did) -> Vec<(Kind, Frame, usize)> {
    log.iter()
        .filter(|b| b.first() == Some(&ROUTED_TAG))
        .filter_map(|b| Frame::decode(b).ok().map(|f| (f, b.len())))
        .filter(|(f, _)| f.origin == origin)
        .filter_map(|(f, len)| f.header().map(|h| h.kind).map(|k| (k, f, len)))
        .collect()
}

fn send_and_log(a: &mut Node, b: &mut Node, now: &mut rings_node::Instant, size: usize) -> Vec<Vec<u8>> {
    let mut log = Vec::new();
    a.send(*now, b.did(), vec![0xA5; size]).expect("send");
    run(a, b, now, 50, Some(&mut log));
    log
}

fn main() -> ExitCode {
    let (ms, mib) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\nusage: wire_bench [--ms 1000] [--mib 64]");
            return ExitCode::from(2);
        }
    };

    let wall = WallClock::now();
    let mut clock = || wall.elapsed().as_secs_f64() * 1000.0;
    let c = crypto_ops(&mut clock, ms);
    println!("## Crypto, native (one core, ops/s)\n");
    println!("| operation | ops/s |\n|---|---:|");
    println!("| sign (ECDSA secp256k1, session key; hellos, error reports) | {:.0} |", c.sign);
    println!("| verify (ECDSA secp256k1) | {:.0} |", c.verify);
    println!("| delegation check (EIP-191 recover + DID; once per peer session) | {:.0} |", c.delegation);
    println!("| pair keys (ECDH + HKDF; once per peer session) | {:.0} |", c.pair);
    println!("| seal 100 B data message (XChaCha20-Poly1305 body and header tags, pair keys) | {:.0} |", c.seal);
    println!("| open 100 B (header and body tags) | {:.0} |", c.open);
    println!("| seal 16 KiB | {:.0} MB/s |", c.seal_16k_mb_s);

    let mut keys = ChaCha20Rng::seed_from_u64(9);
    let (sa, sb) = (session(&mut keys, 1, T0, DAY), session(&mut keys, 1, T0, DAY));
    let delegation_len = postcard::to_allocvec(sa.delegation()).map(|v| v.len()).unwrap_or(0);
    let (mut a, mut b, mut now) = ring_of_two(sa.clone(), sb);
    let first = send_and_log(&mut a, &mut b, &mut now, 0);
    let opening: Vec<String> = routed_from(&first, a.did())
        .into_iter()
        .chain(routed_from(&first, b.did()))
        .filter(|(k, _, _)| matches!(k, Kind::Hello | Kind::HelloReply))
        .map(|(k, _, len)| format!("{k:?} {len} B"))
        .collect();
    println!("\n## Envelope bytes per message (first hop, one frame)\n");
    println!("Once per pair of sessions: {} (the full delegation is {delegation_len} B).\n", opening.join(", "));
    println!("| payload | on the wire | overhead | reference-style: 2 session blocks per frame (lower bound) | same frame as JSON |");
    println!("|---:|---:|---:|---:|---:|");
    for size in [0usize, 100, 16 << 10] {
        let log = send_and_log(&mut a, &mut b, &mut now, size);
        let Some((_, frame, len)) = routed_from(&log, a.did()).into_iter().find(|(k, _, _)| *k == Kind::Data) else {
            eprintln!("no data frame seen for {size} B");
            return ExitCode::FAILURE;
        };
        // The reference carries the origin's and the current hop's session (delegation
        // plus a signature by that session) in every frame; modelled with our codec.
        let reference = len + 2 * (delegation_len + 65);
        let json = 1 + serde_json::to_vec(&frame).map(|v| v.len()).unwrap_or(0);
        println!("| {size} B | {len} B | {} B | {reference} B | {json} B |", len - size);
    }
    println!("\nEach relay adds 20 B (its DID in the path). Of the overhead, 56 B are the 24 B nonce and the two 16 B AEAD tags (header and body); data carries no signature (the pair keys authenticate it).");

    let mut sim = match Sim::new(SimConfig { seed: 5, identities: true, wire: true, ..SimConfig::default() }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e:?}");
            return ExitCode::FAILURE;
        }
    };
    grow_in_waves(&mut sim, 200, 4);
    sim.run_rounds(3);
    let bandwidth = SimConfig::default().bandwidth;
    let started = WallClock::now();
    let r = large_transfer(&mut sim, 3, mib << 20, Duration::from_secs(120));
    let wall_ms = started.elapsed().as_millis();
    let secs = r.took.as_millis() as f64 / 1000.0;
    println!("\n## {mib} MiB through the simulator (200 nodes, real keys, {} Mbit/s links)\n", bandwidth * 8 / 1000);
    println!("| hops | intact | virtual time | goodput | one link's ceiling | wall time |\n|---:|---|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} ms | {:.1} MB/s | {:.1} MB/s | {} ms |",
        r.hops.map_or("-".into(), |h| h.to_string()),
        r.intact,
        r.took.as_millis(),
        r.bytes as f64 / secs / 1e6,
        bandwidth as f64 / 1000.0,
        wall_ms
    );
    if r.intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
