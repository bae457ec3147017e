#![cfg(not(target_arch = "wasm32"))]
//! Attacks on the store by peers with valid identities: pushed junk, captured sets, a
//! batch stopped by one bad record. Each test states what the old rule let through.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rings_node::identity::{Session, Vouched};
use rings_node::store::{Record, RecordKind, Store, StoreConfig, StoreError, StoreMsg};
use rings_node::{Did, Duration, Instant};

mod common;
use common::{ring_of_two, session, DAY, T0};

const MINUTE: u64 = 60_000;

fn entry(w: &Session, key: Did, version: u64, expires_at: u64) -> Record {
    Record::sign(w, key, RecordKind::Set, version, expires_at, b"here".to_vec())
}

/// Before: 64 fresh accounts with 7-day entries evicted a live service registration
/// (the entry expiring first gave way), and its renewal was then refused `Full`. Now
/// set entries live at most an hour unless renewed, a full set gives way from its
/// youngest entries, and a renewal keeps its place.
#[test]
fn a_renewing_service_stays_listed_against_any_number_of_newcomers() {
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let cfg = StoreConfig::default();
    let mut store = Store::new(cfg.clone(), 1, Duration::from_secs(30));
    let mut vouched = Vouched::default();
    let owns = |_: Did| true;
    let key = Record::key_of(b"service:chat");
    let service = session(&mut rng, 1, T0, DAY);
    let mut t = T0 + 1_000;
    assert_eq!(store.accept(Instant(t), entry(&service, key, 1, t + MINUTE), &owns, None, &mut vouched), Ok(true));
    let seven_days = entry(&session(&mut rng, 1, T0, DAY), key, 1, t + 7 * 24 * 60 * MINUTE);
    assert_eq!(store.accept(Instant(t), seven_days, &owns, None, &mut vouched), Err(StoreError::TooLong));
    // 300 Sybil accounts, one hour each (the longest a set entry may ask), never renewed;
    // the service renews every 20 s meanwhile.
    let mut version = 1;
    for i in 0..300 {
        let sybil = session(&mut rng, 1, T0, DAY);
        let _ = store.accept(Instant(t), entry(&sybil, key, 1, t + 60 * MINUTE), &owns, None, &mut vouched);
        if i % 20 == 19 {
            t += 20_000;
            version += 1;
            assert_eq!(
                store.accept(Instant(t), entry(&service, key, version, t + MINUTE), &owns, None, &mut vouched),
                Ok(true),
                "renewal {version}"
            );
        }
        let listed = store.records_at(key, Instant(t));
        assert!(listed.iter().any(|r| r.writer == service.did()), "the service is listed after {} newcomers", i + 1);
        assert!(listed.len() <= cfg.max_set_entries);
    }
    // Once the newcomers' hour is over, the set has room again.
    t += 61 * MINUTE;
    let late = session(&mut rng, 1, T0, DAY);
    assert_eq!(store.accept(Instant(t), entry(&late, key, 1, t + MINUTE), &owns, None, &mut vouched), Ok(true));
}

/// Before: a replication batch stopped at its first bad record, so one writer whose
/// clock ran ahead (a delegation not valid yet) blocked every record after it, on every
/// push; and copies were taken from any peer for any key.
#[test]
fn a_batch_skips_bad_copies_and_refuses_copies_from_nodes_that_could_not_hold_them() {
    let mut rng = ChaCha20Rng::seed_from_u64(22);
    let (sa, sb) = (session(&mut rng, 1, T0, DAY), session(&mut rng, 1, T0, DAY));
    let (a, mut b, now) = ring_of_two(sa, sb);
    let (da, db) = (a.did(), b.did());
    let exp = now.as_millis() + 10 * MINUTE;
    // A writer whose clock runs two minutes ahead: its delegation starts in the future.
    let ahead = session(&mut rng, 1, now.as_millis() + 2 * MINUTE, DAY);
    let honest = session(&mut rng, 1, T0, DAY);
    // Keys B owns: (A, B].
    let k = |back: u64| db.wrapping_sub(Did::from_u64(back));
    let records = vec![
        Record::sign(&ahead, k(1), RecordKind::Value, 1, exp, b"from the future".to_vec()),
        Record::sign(&honest, k(2), RecordKind::Value, 1, exp, b"one".to_vec()),
        Record::sign(&honest, k(3), RecordKind::Value, 1, exp, b"two".to_vec()),
    ];
    let bytes = StoreMsg::Replicate { records }.encode();
    let _ = b.handle_frame(now, da, &bytes);
    assert_eq!(b.store().records_at(k(1), now).len(), 0);
    assert_eq!(b.store().records_at(k(2), now).len(), 1, "the copy after a bad one is kept");
    assert_eq!(b.store().records_at(k(3), now).len(), 1);
    assert_eq!(b.store().stats().rejected(StoreError::BadDelegation), 1);
    // A key B does not own (just before A), pushed by A (its owner): a replica's copy.
    let theirs = da.wrapping_sub(Did::from_u64(7));
    let copy = Record::sign(&honest, theirs, RecordKind::Value, 1, exp, b"replica".to_vec());
    let _ = b.handle_frame(now, da, &StoreMsg::Replicate { records: vec![copy.clone()] }.encode());
    assert_eq!(b.store().records_at(theirs, now).len(), 1);
    // The same kind of copy pushed by a node that does not lie between the key and B.
    let junk_key = da.wrapping_sub(Did::from_u64(9));
    let mallory = junk_key.wrapping_sub(Did::from_u64(1)); // just before the key
    let junk = Record::sign(&honest, junk_key, RecordKind::Value, 1, exp, b"junk".to_vec());
    let before = b.store().len();
    let _ = b.handle_frame(now, mallory, &StoreMsg::Replicate { records: vec![junk] }.encode());
    assert_eq!(b.store().len(), before, "nothing taken from Mallory");
    assert_eq!(b.store().stats().rejected(StoreError::NotReplica), 1);
    // Nor as a put: only the key's owner takes one (before, any node stored a put and
    // pushed it on to its successors as copies).
    let put = Record::sign(&honest, da.wrapping_sub(Did::from_u64(11)), RecordKind::Value, 1, exp, b"put".to_vec());
    let _ = b.handle_frame(now, mallory, &StoreMsg::Put { op: 1, record: put }.encode());
    assert_eq!(b.store().len(), before, "a put for A's key is not B's to take");
    assert_eq!(b.store().stats().rejected(StoreError::NotReplica), 2);
}

/// Once a node is half full, each sender holds at most an eighth of its records as
/// copies it does not own.
#[test]
fn one_sender_fills_at_most_its_share_of_a_nodes_copies() {
    let mut rng = ChaCha20Rng::seed_from_u64(23);
    let cfg = StoreConfig { max_records: 80, ..StoreConfig::default() };
    let mut store = Store::new(cfg, 1, Duration::from_secs(30));
    let mut vouched = Vouched::default();
    let mine = |k: Did| k < Did::from_u64(1_000); // the first 41 keys
    let w = session(&mut rng, 1, T0, DAY);
    let pusher = Did::from_u64(77);
    let t = Instant(T0 + 1_000);
    for i in 0..41u64 {
        let r = Record::sign(&w, Did::from_u64(i), RecordKind::Value, 1, t.as_millis() + MINUTE, vec![1]);
        assert_eq!(store.accept(t, r, &mine, None, &mut vouched), Ok(true));
    }
    let mut taken = 0;
    for i in 0..40u64 {
        let r = Record::sign(&w, Did::from_u64(1_000 + i), RecordKind::Value, 1, t.as_millis() + MINUTE, vec![1]);
        if store.accept(t, r, &mine, Some(pusher), &mut vouched) == Ok(true) {
            taken += 1;
        }
    }
    assert_eq!(taken, 10);
    assert_eq!(store.stats().rejected(StoreError::NotReplica), 30);
    // Another sender still has its own share.
    let r = Record::sign(&w, Did::from_u64(5_000), RecordKind::Value, 1, t.as_millis() + MINUTE, vec![1]);
    assert_eq!(store.accept(t, r, &mine, Some(Did::from_u64(78)), &mut vouched), Ok(true));
}
