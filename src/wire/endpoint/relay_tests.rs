//! A relay that loses the link a message is crossing tells the message's origin.

use super::*;
use crate::sim::pair::{session, DAY, T0};
use rand_chacha::rand_core::SeedableRng;

fn head(origin: Did, dest: Did, tx: u64, path: Vec<Did>, frames: u32, now: Instant) -> Frame {
    let body_len = frames * MIN_PIECE as u32;
    let header = Header {
        network: 1,
        session: SessionProof::Known(1),
        issued_at: now.as_millis(),
        ttl: 60_000,
        kind: Kind::Data,
        body_len,
        frames,
        auth: Auth::Pair { to: 2, nonce: [0; NONCE_LEN], head: [0; TAG_LEN] },
    };
    Frame { origin, dest, tx, hop_limit: 32, path, seq: 0, part: Part::Head(header), piece: vec![0; MIN_PIECE] }
}

fn reports(w: &mut Wire) -> Vec<(Did, ErrorBody)> {
    std::iter::from_fn(|| w.poll_output())
        .filter_map(|o| match o {
            WireOutput::Transmit { to, frame } => {
                Frame::decode(&frame).ok().filter(|f| f.header().is_some_and(|h| h.kind == Kind::Error)).map(|f| (to, f))
            }
            _ => None,
        })
        .filter_map(|(to, f)| postcard::from_bytes::<ErrorBody>(&f.piece).ok().map(|e| (to, e)))
        .collect()
}

#[test]
fn frames_queued_for_or_pinned_to_a_fallen_link_are_reported_to_their_origins() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let s = session(&mut rng, 1, T0, DAY);
    let me = s.did();
    let (x, y) = (me.wrapping_add(Did::from_u64(10)), me.wrapping_add(Did::from_u64(20)));
    let (origin, dest) = (me.wrapping_sub(Did::from_u64(5)), me.wrapping_add(Did::from_u64(1_000)));
    let cfg = WireConfig { link_window: 3 * MIN_PIECE, ..WireConfig::default() };
    let mut w = Wire::new(me, Some(s), cfg, [3; 32]);
    w.require_links();
    w.link_up(x);
    w.link_up(y);
    let mut table = RoutingTable::new(me, 8);
    table.set_successors([y]);
    let now = Instant(T0 + 1_000);
    // A two-frame message relayed in full (head and last piece sent): unpinned, and
    // never reported; the link drains it.
    let done = head(origin, dest, 6, vec![x], 2, now);
    let mut last = done.clone();
    last.seq = 1;
    last.part = Part::More;
    assert_eq!(w.handle_frame(now, &table, x, &done.encode()), Ok(()));
    assert_eq!(w.handle_frame(now, &table, x, &last.encode()), Ok(()));
    let sent: usize = std::iter::from_fn(|| w.poll_output())
        .map(|o| match o {
            WireOutput::Transmit { frame, .. } => frame.len(),
            _ => 0,
        })
        .sum();
    w.handle_sent(now, &table, y, sent);
    // A three-frame message crossing toward `dest` (its head sent, pinned to y); a
    // single-frame one sent too; three more that wait in y's queue (the window is full).
    assert_eq!(w.handle_frame(now, &table, x, &head(origin, dest, 1, vec![x], 3, now).encode()), Ok(()));
    for tx in 2..6 {
        assert_eq!(w.handle_frame(now, &table, x, &head(origin, dest, tx, vec![x], 1, now).encode()), Ok(()));
    }
    assert!(reports(&mut w).is_empty());
    w.handle_peer_down(now, &table, y);
    let got = reports(&mut w);
    let mut told: Vec<u64> = got.iter().map(|(_, e)| e.tx).collect();
    told.sort();
    assert!(got.iter().all(|(to, e)| *to == x && e.reason == RouteError::LinkLost && e.dest == dest), "{got:?}");
    // The pinned message and each queued one, once each; not the one sent whole, nor
    // the one relayed in full.
    assert_eq!(told, vec![1, 3, 4, 5]);
}
