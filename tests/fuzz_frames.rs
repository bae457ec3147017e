#![cfg(not(target_arch = "wasm32"))]
//! Property test: the frame decoders and the message handler never panic, and every frame
//! they refuse is counted exactly once. A seeded mutator works on a corpus of real frames
//! (ring messages, hellos, single- and multi-frame data, error reports) captured from two
//! honest nodes, plus purely random bytes. `FUZZ_ITERATIONS` overrides the default count.
//! The same harness runs under libFuzzer in `fuzz/` (see the README).

mod common;

use common::{ring_of_two, session, DAY, T0};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rings_node::sim::pair::{honest_traffic, refused};
use rings_node::{Did, Event, Instant};

fn mutate(rng: &mut ChaCha20Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let pick = |rng: &mut ChaCha20Rng| corpus[(rng.next_u32() as usize) % corpus.len()].clone();
    if rng.next_u32() % 20 == 0 {
        // Random bytes behind a plausible tag.
        let mut v = vec![0u8; (rng.next_u32() % 300) as usize];
        rng.fill_bytes(&mut v);
        if let (Some(first), Some(seed)) = (v.first_mut(), corpus.first()) {
            if rng.next_u32() % 2 == 0 {
                *first = seed[0];
            } else {
                *first = rings_node::wire::ROUTED_TAG;
            }
        }
        return v;
    }
    let mut v = pick(rng);
    for _ in 0..1 + rng.next_u32() % 4 {
        let r = rng.next_u32();
        let len = v.len().max(1);
        let at = (rng.next_u32() as usize) % len;
        match r % 9 {
            0 if !v.is_empty() => v[at] ^= 1 << (r >> 8 & 7),
            1 if !v.is_empty() => v[at] = rng.next_u32() as u8,
            2 if !v.is_empty() => v[at] = [0, 0x7f, 0x80, 0xff][(r >> 8) as usize & 3],
            3 => v.truncate(at),
            4 => {
                let mut tail = vec![0u8; (r >> 8) as usize % 64];
                rng.fill_bytes(&mut tail);
                v.extend(tail);
            }
            5 if at < v.len() => {
                let end = (at + (r >> 8) as usize % 16).min(v.len());
                v.drain(at..end);
            }
            6 if at < v.len() => {
                let end = (at + (r >> 8) as usize % 16).min(v.len());
                let dup: Vec<u8> = v[at..end].to_vec();
                v.splice(at..at, dup);
            }
            7 => {
                // Splice: this frame's head onto another's tail.
                let other = pick(rng);
                let cut = (rng.next_u32() as usize) % other.len().max(1);
                v.truncate(at);
                v.extend_from_slice(other.get(cut..).unwrap_or(&[]));
            }
            _ if v.len() > 4 => {
                // A varint-sized field blown up.
                v[at] = 0xff;
                if at + 1 < v.len() {
                    v[at + 1] = 0xff;
                }
            }
            _ => {}
        }
    }
    v
}

#[test]
fn mutated_and_random_frames_never_panic_and_every_refusal_is_counted() {
    let iterations: u64 = std::env::var("FUZZ_ITERATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let mut keys = ChaCha20Rng::seed_from_u64(5);
    let (sa, sb) = (session(&mut keys, 1, T0, DAY), session(&mut keys, 1, T0, DAY));
    let (mut a, mut b, mut now) = ring_of_two(sa, sb);
    let corpus = honest_traffic(&mut a, &mut b, &mut now);
    assert!(
        corpus.len() >= 20
            && corpus.iter().any(|f| f[0] == rings_node::wire::ROUTED_TAG)
            && corpus.iter().any(|f| f[0] != rings_node::wire::ROUTED_TAG)
    );
    while b.poll_event().is_some() {}
    if let Ok(dir) = std::env::var("FUZZ_CORPUS_DIR") {
        // Seeds for the libFuzzer target: sender byte 0 (the real neighbour), then the frame.
        std::fs::create_dir_all(&dir).unwrap();
        for (i, f) in corpus.iter().enumerate() {
            std::fs::write(format!("{dir}/honest-{i:02}"), [&[0u8][..], f].concat()).unwrap();
        }
    }
    let senders = [a.did(), Did::from_u64(3), b.did()];
    let mut rng = ChaCha20Rng::seed_from_u64(0xF022);
    let (mut ok, mut err) = (0u64, 0u64);
    let mut reasons = std::collections::BTreeMap::<String, u64>::new();
    let start = refused(&b);
    let cfg = b.wire().config().clone();
    for i in 0..iterations {
        let bytes = mutate(&mut rng, &corpus);
        let from = senders[(rng.next_u32() % 3) as usize];
        let before = refused(&b);
        match b.handle_frame(now, from, &bytes) {
            Ok(()) => ok += 1,
            Err(e) => {
                err += 1;
                assert_eq!(refused(&b), before + 1, "refusal {e:?} counted once (iteration {i})");
                let name = format!("{e:?}");
                let kind = name.split('(').take(2).collect::<Vec<_>>().join("(");
                *reasons.entry(kind).or_default() += 1;
            }
        }
        while b.poll_transmit().is_some() {}
        while b.poll_event().is_some() {}
        if i % 100_000 == 0 {
            // Time moves, slower than the corpus's frames expire: timers fire, stale
            // reassemblies are freed.
            now = Instant(now.0 + 5_000);
            b.handle_timeout(now);
            let (_, _, held_bytes) = b.wire().held();
            assert!(held_bytes <= cfg.reassembly_total, "reassembly stays within its budget");
        }
    }
    assert_eq!(refused(&b) - start, err, "every refusal counted");
    println!("{iterations} frames: {ok} accepted, {err} refused and counted; corpus of {} real frames", corpus.len());
    println!("refusals by reason: {reasons:?}");
    if iterations >= 100_000 {
        assert!(err > iterations / 2 && ok > 0, "the mutator reaches both outcomes");
        // It gets past the decoder into the checks behind it, the signature check included.
        assert!(reasons.len() >= 10, "{reasons:?}");
        assert!(reasons.contains_key("Routed(BadSignature)"), "{reasons:?}");
    }

    // B is unharmed: an honest message still arrives.
    while a.poll_transmit().is_some() {}
    a.send(now, b.did(), b"still here".to_vec()).unwrap();
    common::run(&mut a, &mut b, &mut now, 200);
    let got = std::iter::from_fn(|| b.poll_event()).any(|e| matches!(e, Event::Message(d) if d.body == b"still here"));
    assert!(got, "B still receives after the storm");
}

/// Found by the libFuzzer target: a relay whose outgoing queue is full refused the frame
/// and counted it twice. Now: once.
#[test]
fn a_full_relay_queue_refuses_and_counts_once() {
    use rings_node::node::FrameError;
    use rings_node::wire::frame::{Frame, Part};
    use rings_node::wire::RejectReason;
    let mut keys = ChaCha20Rng::seed_from_u64(6);
    let (sa, sb) = (session(&mut keys, 1, T0, DAY), session(&mut keys, 1, T0, DAY));
    let (a, mut b, now) = ring_of_two(sa, sb);
    // A destination A owns, so B relays back toward A; nothing drains B's link to A.
    let dest = a.did().wrapping_sub(Did::from_u64(1));
    let mut overflowed = 0;
    for tx in 0..400u64 {
        let f = Frame {
            origin: Did::from_u64(3),
            dest,
            tx,
            hop_limit: 32,
            path: vec![a.did()],
            seq: 1,
            part: Part::More,
            piece: vec![7; 60_000],
        };
        let before = refused(&b);
        let r = b.handle_frame(now, a.did(), &f.encode());
        if r.is_err() {
            assert_eq!(refused(&b), before + 1, "{r:?}");
        }
        if r == Err(FrameError::Routed(RejectReason::RelayOverflow)) {
            overflowed += 1;
        }
    }
    assert!(overflowed > 200, "the 8 MiB relay queue fills: {overflowed}");
    assert_eq!(b.wire().stats().rejected(RejectReason::RelayOverflow), overflowed);
}
