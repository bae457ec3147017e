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

/// Both nodes run on a monotonic clock that starts at 0, their wall clocks at T0: every
/// validity check must read the wall clock (the monotonic one would make every
/// delegation not yet valid). Messages small and multi-frame, a put and a get; then the
/// receiver's clock jumps and it refuses what the sender signs.
#[test]
fn nodes_on_a_monotonic_clock_from_zero_check_validity_by_the_wall_clock() {
    use rings_node::store::{GetResult, Record, RecordKind, StoreEvent};
    use rings_node::{Duration, Identity, NodeConfig};
    for seed in 1..=3u64 {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (sa, sb) = (session(&mut rng, 1, T0, DAY), session(&mut rng, 1, T0, DAY));
        let mut now = Instant(0);
        let mut a = Node::new(Identity::Session(sa), NodeConfig::default(), [1; 32], now).expect("valid");
        let mut b = Node::new(Identity::Session(sb), NodeConfig::default(), [2; 32], now).expect("valid");
        a.set_wall_clock(now, T0);
        b.set_wall_clock(now, T0);
        b.join(now, a.did());
        run(&mut a, &mut b, &mut now, 3_000, None);
        assert_eq!(a.ring().successor(), Some(b.did()), "seed {seed}");
        let big = vec![7u8; 200_000];
        let _ = a.send(now, b.did(), b"small".to_vec());
        let _ = a.send(now, b.did(), big.clone());
        let _ = b.send(now, a.did(), b"back".to_vec());
        run(&mut a, &mut b, &mut now, 3_000, None);
        assert_eq!(delivered(&mut b), vec![b"small".to_vec(), big], "seed {seed}");
        assert_eq!(delivered(&mut a), vec![b"back".to_vec()], "seed {seed}");
        assert_eq!(a.wire().stats().rejected_total() + b.wire().stats().rejected_total(), 0, "seed {seed}: nothing refused");
        // A record written by A is read by B, its expiry in wall time.
        let key = Record::key_of(b"clock");
        let put = a.put(now, key, RecordKind::Value, b"v".to_vec(), Duration::from_secs(600)).expect("a put");
        run(&mut a, &mut b, &mut now, 2_000, None);
        let get = b.get(now, key);
        run(&mut a, &mut b, &mut now, 2_000, None);
        let (mut stored, mut found) = (false, None);
        for n in [&mut a, &mut b] {
            while let Some(e) = n.poll_event() {
                match e {
                    Event::Store(StoreEvent::Put { op, result, .. }) if op == put => stored = result.is_ok(),
                    Event::Store(StoreEvent::Get { op, result: GetResult::Found(rs), .. }) if op == get => found = Some(rs),
                    _ => {}
                }
            }
        }
        assert!(stored, "seed {seed}: the put was stored");
        let rs = found.expect("the get found the record");
        assert!(
            rs[0].expires_at > T0 && rs[0].expires_at <= T0 + 20_000 + 600_000,
            "seed {seed}: expiry in wall time: {}",
            rs[0].expires_at
        );
        // B's clock jumps two hours ahead: what A signs now has expired by B's clock.
        b.set_wall_clock(now, T0 + now.0 + 7_200_000);
        let before = b.wire().stats().rejected(RejectReason::Expired);
        let _ = a.send(now, b.did(), b"late".to_vec());
        run(&mut a, &mut b, &mut now, 500, None);
        assert!(b.wire().stats().rejected(RejectReason::Expired) > before, "seed {seed}: B refused it as expired");
        assert!(!delivered(&mut b).contains(&b"late".to_vec()), "seed {seed}");
    }
}
