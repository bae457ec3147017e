//! Messages arriving in several frames, reassembled at their destination only.
//!
//! Only a message whose first frame was authenticated (sealed data with its header tag)
//! is admitted. Its announced length is charged, when the first frame is accepted,
//! against a budget per origin, per link peer that handed the frames over, and in
//! total, so no peer makes the node hold more than it admitted; memory itself is
//! allocated as pieces arrive (wasm memory never shrinks). A message is dropped, and
//! its budget freed, after the configured time without progress, and in any case at its
//! absolute deadline (its expiry plus that time), however often pieces trickle in.

use std::collections::HashMap;

use k256::ecdsa::VerifyingKey;

use super::frame::{Kind, Signing};
use crate::identity::pair::PairKeys;
use crate::identity::CompactSig;
use crate::time::Instant;
use crate::Did;

#[derive(Debug)]
pub(super) struct Partial {
    pub kind: Kind,
    pub key: VerifyingKey,
    pub fingerprint: u64,
    pub full_proof: bool,
    pub check: Check,
    pub expires_at: u64,
    pub msg_expires: u64,
    pub hops: u8,
    pub frames: u32,
    pub next_seq: u32,
    pub body_len: usize,
    pub body: Vec<u8>,
    pub last_progress: Instant,
    /// The link peer the first frame came over; the rest must come the same way.
    pub via: Did,
    /// Dropped at this instant whatever its progress.
    pub deadline: Instant,
}

impl Partial {
    /// Appends `piece`, growing the buffer by doubling up to the announced length;
    /// `false` if memory could not be had.
    pub fn append(&mut self, piece: &[u8]) -> bool {
        let need = self.body.len() + piece.len();
        if need > self.body.capacity() {
            let target = (self.body.capacity() * 2).max(need).min(self.body_len.max(need));
            if self.body.try_reserve_exact(target - self.body.len()).is_err() {
                return false;
            }
        }
        self.body.extend_from_slice(piece);
        true
    }
}

/// Budgets of reassembly, in announced bytes.
#[derive(Clone, Copy, Debug)]
pub(super) struct Budget {
    pub per_origin: usize,
    pub per_link: usize,
    pub total: usize,
}

/// How a message is authenticated once all its frames are in.
#[derive(Debug)]
pub(super) enum Check {
    /// The signature over the digest of header and body (hashed as pieces arrive).
    Signed { signature: CompactSig, signing: Signing },
    /// The AEAD tag at the end of the body, under the pair's keys, the header digest
    /// as associated data.
    Sealed { keys: PairKeys, aad: [u8; 32], nonce: [u8; crate::identity::pair::NONCE_LEN] },
}

#[derive(Debug, Default)]
pub(super) struct Reassembly {
    partials: HashMap<(Did, u64), Partial>,
    per_origin: HashMap<Did, usize>,
    per_link: HashMap<Did, usize>,
    total: usize,
}

fn charge(map: &mut HashMap<Did, usize>, who: Did, bytes: usize) {
    *map.entry(who).or_insert(0) += bytes;
}

fn refund(map: &mut HashMap<Did, usize>, who: Did, bytes: usize) {
    if let Some(u) = map.get_mut(&who) {
        *u -= bytes;
        if *u == 0 {
            map.remove(&who);
        }
    }
}

impl Reassembly {
    /// Admits a message if every budget allows its announced length.
    pub fn start(&mut self, origin: Did, tx: u64, p: Partial, b: Budget) -> bool {
        let used = |m: &HashMap<Did, usize>, k: Did| m.get(&k).copied().unwrap_or(0);
        if used(&self.per_origin, origin) + p.body_len > b.per_origin
            || used(&self.per_link, p.via) + p.body_len > b.per_link
            || self.total + p.body_len > b.total
        {
            return false;
        }
        charge(&mut self.per_origin, origin, p.body_len);
        charge(&mut self.per_link, p.via, p.body_len);
        self.total += p.body_len;
        self.partials.insert((origin, tx), p);
        true
    }

    pub fn get_mut(&mut self, origin: Did, tx: u64) -> Option<&mut Partial> {
        self.partials.get_mut(&(origin, tx))
    }

    pub fn contains(&self, origin: Did, tx: u64) -> bool {
        self.partials.contains_key(&(origin, tx))
    }

    pub fn finish(&mut self, origin: Did, tx: u64) -> Option<Partial> {
        let p = self.partials.remove(&(origin, tx))?;
        self.total -= p.body_len;
        refund(&mut self.per_origin, origin, p.body_len);
        refund(&mut self.per_link, p.via, p.body_len);
        Some(p)
    }

    /// Messages whose last progress is `timeout` or more before `now`, or whose
    /// deadline passed.
    pub fn stalled(&self, now: Instant, timeout: crate::time::Duration) -> Vec<(Did, u64)> {
        self.partials.iter().filter(|(_, p)| (p.last_progress + timeout).min(p.deadline) <= now).map(|(&k, _)| k).collect()
    }

    pub fn next_deadline(&self, timeout: crate::time::Duration) -> Option<Instant> {
        self.partials.values().map(|p| (p.last_progress + timeout).min(p.deadline)).min()
    }

    pub fn bytes(&self) -> usize {
        self.total
    }

    pub fn len(&self) -> usize {
        self.partials.len()
    }
}
