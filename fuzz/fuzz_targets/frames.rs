//! libFuzzer target: arbitrary bytes as a frame from a link peer to a joined node with
//! live sessions. The first input byte picks the sender (the real neighbour, a stranger,
//! the node itself); the rest is the frame. Never a panic; every refusal counted once.
//!
//! `cd fuzz && cargo +nightly fuzz run frames -- -max_total_time=600`
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rings_node::sim::pair::{honest_traffic, refused, ring_of_two, session, DAY, T0};
use rings_node::{Did, Instant, Node};

struct Bench {
    b: Node,
    senders: [Did; 3],
    now: Instant,
    inputs: u64,
}

static BENCH: Mutex<Option<Bench>> = Mutex::new(None);

fn bench() -> Bench {
    let mut keys = ChaCha20Rng::seed_from_u64(5);
    let (sa, sb) = (session(&mut keys, 1, T0, DAY), session(&mut keys, 1, T0, DAY));
    let (mut a, mut b, mut now) = ring_of_two(sa, sb);
    // Leaves A's session cached at B, so Known-session frames reach the signature check.
    honest_traffic(&mut a, &mut b, &mut now);
    let senders = [a.did(), Did::from_u64(3), b.did()];
    Bench { b, senders, now, inputs: 0 }
}

fuzz_target!(|data: &[u8]| {
    let mut guard = BENCH.lock().unwrap_or_else(|e| e.into_inner());
    let bench = guard.get_or_insert_with(bench);
    let Some((&who, frame)) = data.split_first() else { return };
    let from = bench.senders[who as usize % 3];
    let before = refused(&bench.b);
    let result = bench.b.handle_frame(bench.now, from, frame);
    assert_eq!(refused(&bench.b), before + u64::from(result.is_err()), "{result:?}");
    while bench.b.poll_transmit().is_some() {}
    while bench.b.poll_event().is_some() {}
    bench.inputs += 1;
    if bench.inputs % 1000 == 0 {
        bench.now = Instant(bench.now.0 + 1_000);
        bench.b.handle_timeout(bench.now);
    }
});
