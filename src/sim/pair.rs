//! Two real nodes with real sessions, linked directly, every frame through the codec:
//! the bench for attack tables, the property test and the fuzz target.

use rand_chacha::ChaCha20Rng;

use crate::chord::ConfigError;
use crate::identity::{AccountKind, LocalAccount, Session};
use crate::node::{Identity, Node, NodeConfig};
use crate::time::{Duration, Instant};

/// A fixed start time (2023-11-14) so sessions and messages are reproducible.
pub const T0: u64 = 1_700_000_000_000;
pub const DAY: Duration = Duration::from_secs(86_400);

/// A fresh account delegating to a fresh session by EIP-191.
pub fn session(rng: &mut ChaCha20Rng, network: u32, issued: u64, ttl: Duration) -> Session {
    let account = LocalAccount::generate(rng);
    Session::with_local_account(rng, &account, AccountKind::Eip191, network, Instant(issued), ttl)
}

/// Moves `x`'s transmits to `y` through the codec (dropping those for anyone else);
/// fires `x`'s timer when due. Keeps a copy of each delivered frame in `log`, if given.
pub fn pump(x: &mut Node, y: &mut Node, now: Instant, mut log: Option<&mut Vec<Vec<u8>>>) {
    while let Some(t) = x.poll_transmit() {
        if t.to == y.did() {
            let bytes = t.frame.encode();
            let _ = y.handle_frame(now, x.did(), &bytes);
            if let Some(log) = log.as_deref_mut() {
                log.push(bytes);
            }
        }
    }
    if x.poll_timeout().is_some_and(|t| t <= now) {
        x.handle_timeout(now);
    }
}

/// Pumps both ways for `ms` milliseconds of virtual time, one millisecond a step.
pub fn run(a: &mut Node, b: &mut Node, now: &mut Instant, ms: u64, mut log: Option<&mut Vec<Vec<u8>>>) {
    for _ in 0..ms {
        *now = Instant(now.0 + 1);
        pump(a, b, *now, log.as_deref_mut());
        pump(b, a, *now, log.as_deref_mut());
    }
}

/// A ring of two: `b` joins through `a`; returns both and the time they agree.
pub fn ring_of_two(sa: Session, sb: Session) -> (Node, Node, Instant) {
    // The default configuration is valid (`Config::validate` unit tests): `expect` cannot fire.
    ring_of_two_with(sa, sb, NodeConfig::default()).expect("default config")
}

/// [`ring_of_two`] with both nodes on `cfg`; a configuration `Node::new` refuses is
/// returned as its error.
pub fn ring_of_two_with(sa: Session, sb: Session, cfg: NodeConfig) -> Result<(Node, Node, Instant), ConfigError> {
    let mut a = Node::new(Identity::Session(sa), cfg.clone(), [1; 32], Instant(T0))?;
    let mut b = Node::new(Identity::Session(sb), cfg, [2; 32], Instant(T0))?;
    b.join(Instant(T0), a.did());
    let mut now = Instant(T0);
    run(&mut a, &mut b, &mut now, 3_000, None);
    assert_eq!(a.ring().successor(), Some(b.did()));
    assert_eq!(b.ring().successor(), Some(a.did()));
    Ok((a, b, now))
}

/// Honest traffic both ways (ring maintenance, hellos, single- and multi-frame data, a
/// failure report), every frame recorded: a corpus of real frames, sorted, deduplicated.
pub fn honest_traffic(a: &mut Node, b: &mut Node, now: &mut Instant) -> Vec<Vec<u8>> {
    let mut seen = Vec::new();
    for (i, size) in [0usize, 1, 100, 5_000, 200_000].into_iter().enumerate() {
        let _ = a.send(*now, b.did(), vec![i as u8; size]);
        let _ = b.send(*now, a.did(), vec![i as u8; size / 2]);
        run(a, b, now, 200, Some(&mut seen));
    }
    // A message to a DID that B owns but is not: B reports it back.
    let ghost = b.did().wrapping_sub(crate::Did::from_u64(1));
    let _ = a.send(*now, ghost, b"to nobody".to_vec());
    run(a, b, now, 50, Some(&mut seen));
    seen.sort();
    seen.dedup();
    seen
}

/// How many frames (or stored records) `n` has refused (each refusal counts once, in one
/// of these).
pub fn refused(n: &Node) -> u64 {
    n.wire().stats().rejected_total() + n.ring().stats().malformed + n.store().stats().rejected_total()
}
