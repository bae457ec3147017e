#![cfg(not(target_arch = "wasm32"))]
//! Two clocks: timers run on the driver's monotonic `now`; validity checks (message
//! issue times, delegations, records) on the wall clock, `now` plus the offset the driver
//! sets with `Node::set_wall_clock`. A jump of the system clock changes what is valid,
//! and neither fires nor freezes the timers.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use rings_node::sim::pair::{ring_of_two, run, session, DAY, T0};
use rings_node::wire::RejectReason;
use rings_node::{Event, Instant, Node};

fn delivered(n: &mut Node) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    while let Some(e) = n.poll_event() {
        if let Event::Message(d) = e {
            got.push(d.body);
        }
    }
    got
}

#[test]
fn a_wall_clock_jump_moves_validity_not_timers() {
    for (seed, jump_ms) in [(1u64, 2 * 3_600_000i64), (2, -2 * 3_600_000), (3, 10 * 60_000)] {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (sa, sb) = (session(&mut rng, 1, T0, DAY), session(&mut rng, 1, T0, DAY));
        let (mut a, mut b, mut now) = ring_of_two(sa, sb);
        let _ = (delivered(&mut a), delivered(&mut b));
        // The driver's monotonic clock runs on; A's system clock jumps.
        let timer = a.poll_timeout();
        let wall = now.0.checked_add_signed(jump_ms).expect("in range");
        a.set_wall_clock(now, wall);
        assert_eq!(a.wall_clock(now), Instant(wall));
        assert_eq!(a.poll_timeout(), timer, "seed {seed}: no timer moved");
        // Ring maintenance goes on at its pace: the two stay each other's successor.
        let mut frames = Vec::new();
        run(&mut a, &mut b, &mut now, 5_000, Some(&mut frames));
        assert!(frames.len() >= 4, "seed {seed}: maintenance continued ({} frames)", frames.len());
        assert_eq!(a.ring().successor(), Some(b.did()), "seed {seed}");
        assert_eq!(b.ring().successor(), Some(a.did()), "seed {seed}");
        // What A signs now carries its wall clock: B refuses it, from the future or
        // expired, and delivers nothing.
        let refused = |b: &Node| b.wire().stats().rejected(RejectReason::FromFuture) + b.wire().stats().rejected(RejectReason::Expired);
        let before = refused(&b);
        let _ = a.send(now, b.did(), b"skewed".to_vec());
        run(&mut a, &mut b, &mut now, 500, None);
        assert!(refused(&b) > before, "seed {seed}: B refused A's skewed message");
        assert!(delivered(&mut b).is_empty(), "seed {seed}");
        // A's clock is set right again: its messages arrive.
        a.set_wall_clock(now, now.0);
        let _ = a.send(now, b.did(), b"on time".to_vec());
        run(&mut a, &mut b, &mut now, 3_000, None);
        // (The skewed one waited for a session the skewed hellos could not open; a retry
        // after the correction opens it, and it follows, signed at its sending.)
        let got = delivered(&mut b);
        assert!(got.contains(&b"on time".to_vec()), "seed {seed}: {got:?}");
        assert!(got.iter().all(|m| m == b"on time" || m == b"skewed"), "seed {seed}: {got:?}");
    }
}
