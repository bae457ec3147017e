//! Building blocks of simulated experiments, shared by the tests and the benchmark.

use super::{NodeIx, Outcome, Sim};
use crate::chord::RequestId;
use crate::time::Duration;

/// What a batch of lookups returned, judged by the oracle at the moment of each answer.
#[derive(Clone, Debug, Default)]
pub struct LookupReport {
    pub issued: u64,
    pub correct: u64,
    /// Answered with a node that was not the key's owner.
    pub wrong: u64,
    /// Failed with an error (timeout, unreachable …).
    pub failed: u64,
    /// Hop counts of the correct answers.
    pub hops: Vec<u8>,
}

impl LookupReport {
    pub fn success_rate(&self) -> f64 {
        self.correct as f64 / self.issued.max(1) as f64
    }
    pub fn mean_hops(&self) -> f64 {
        self.hops.iter().map(|&h| h as f64).sum::<f64>() / self.hops.len().max(1) as f64
    }
    pub fn percentile_hops(&self, p: f64) -> u8 {
        let mut h = self.hops.clone();
        h.sort_unstable();
        h.get(((h.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0)
    }
    pub fn merge(&mut self, o: &LookupReport) {
        self.issued += o.issued;
        self.correct += o.correct;
        self.wrong += o.wrong;
        self.failed += o.failed;
        self.hops.extend_from_slice(&o.hops);
    }
}

/// Runs until every request in `pending` has an outcome or `limit` has passed.
fn wait_for(sim: &mut Sim, pending: &[(NodeIx, RequestId)], limit: Duration) {
    let end = sim.now() + limit;
    let step = Duration::from_millis(20);
    let mut first_open = 0;
    while sim.now() < end {
        while first_open < pending.len() && sim.outcome(pending[first_open].0, pending[first_open].1).is_some() {
            first_open += 1;
        }
        if first_open == pending.len() {
            return;
        }
        sim.run_for(step);
    }
}

/// Joins `count` nodes one at a time, each through a random member, waiting for each
/// join to complete before starting the next. Returns how many joins failed.
pub fn grow_one_by_one(sim: &mut Sim, count: usize) -> usize {
    let mut failed = 0;
    let limit = sim.join_limit();
    for _ in 0..count {
        let via = sim.random_member();
        let (ix, req) = sim.spawn(via);
        if let Some(req) = req {
            wait_for(sim, &[(ix, req)], limit);
            if !matches!(sim.take_outcome(ix, req), Some(Outcome::Joined { .. })) {
                failed += 1;
            }
        }
    }
    failed
}

/// Grows the ring to `target` members in waves that at most double it (each new node
/// joins through a random member), running `settle_rounds` rounds after each wave.
/// Returns how many joins failed.
pub fn grow_in_waves(sim: &mut Sim, target: usize, settle_rounds: u64) -> usize {
    let mut failed = 0;
    if sim.oracle().is_empty() {
        sim.spawn(None);
    }
    let limit = sim.join_limit();
    loop {
        let size = sim.members().len();
        if size >= target {
            break;
        }
        let wave = size.min(target - size);
        let mut pending = Vec::with_capacity(wave);
        for _ in 0..wave {
            let via = sim.random_member();
            if let (ix, Some(req)) = sim.spawn(via) {
                pending.push((ix, req));
            }
        }
        wait_for(sim, &pending, limit);
        for (ix, req) in pending {
            if !matches!(sim.take_outcome(ix, req), Some(Outcome::Joined { .. })) {
                failed += 1;
            }
        }
        sim.run_rounds(settle_rounds);
    }
    failed
}

/// Runs whole rounds until no member has a wrong successor or predecessor (and, with
/// `fingers`, no wrong finger). Returns the rounds it took, or `None` after `max`.
pub fn rounds_until_converged(sim: &mut Sim, max: u64, fingers: bool) -> Option<u64> {
    for r in 0..=max {
        if sim.ring_errors().is_zero() && (!fingers || sim.finger_errors() == 0) {
            return Some(r);
        }
        if r < max {
            sim.run_rounds(1);
        }
    }
    None
}

/// Starts `count` lookups of random keys from random members now; returns their ids.
pub fn issue_lookups(sim: &mut Sim, count: usize) -> Vec<(NodeIx, RequestId)> {
    let mut pending = Vec::with_capacity(count);
    for _ in 0..count {
        let Some(ix) = sim.random_member() else { break };
        let key = sim.rng().did();
        pending.push((ix, sim.lookup(ix, key)));
    }
    pending
}

/// Judges lookups started earlier, taking their outcomes. A lookup whose origin crashed
/// before its answer arrived has no one to judge it and is left out.
pub fn judge(sim: &mut Sim, pending: Vec<(NodeIx, RequestId)>) -> LookupReport {
    let mut report = LookupReport::default();
    for (ix, id) in pending {
        let outcome = sim.take_outcome(ix, id);
        if outcome.is_none() && !sim.is_alive(ix) {
            continue;
        }
        report.issued += 1;
        match outcome {
            Some(Outcome::Found { hops, correct: true, .. }) => {
                report.correct += 1;
                report.hops.push(hops);
            }
            Some(Outcome::Found { correct: false, .. }) => report.wrong += 1,
            _ => report.failed += 1,
        }
    }
    report
}

/// Issues `count` lookups of random keys from random members at once, runs until all
/// are answered (or the request timeout passes), and judges them.
pub fn random_lookups(sim: &mut Sim, count: usize) -> LookupReport {
    let pending = issue_lookups(sim, count);
    let limit = sim.answer_limit();
    wait_for(sim, &pending, limit);
    judge(sim, pending)
}

/// What a batch of routed messages did.
#[derive(Clone, Debug, Default)]
pub struct MessageReport {
    pub sent: u64,
    /// Arrived once, from the right sender, byte for byte.
    pub intact: u64,
    /// Arrived altered, from the wrong sender, or more than once.
    pub corrupt: u64,
    /// Reported back to the sender as undelivered.
    pub undelivered: u64,
    /// Neither arrived nor reported.
    pub lost: u64,
    /// Hops of the intact ones.
    pub hops: Vec<u8>,
}

impl MessageReport {
    pub fn mean_hops(&self) -> f64 {
        self.hops.iter().map(|&h| h as f64).sum::<f64>() / self.hops.len().max(1) as f64
    }
}

/// A body of `size` bytes (at least 8) that names message `n` and is otherwise random.
fn message_body(sim: &mut Sim, n: u64, size: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(size.max(8));
    body.extend_from_slice(&n.to_be_bytes());
    while body.len() < size {
        body.extend_from_slice(&sim.rng().next_u64().to_le_bytes());
    }
    body.truncate(size.max(8));
    body
}

/// Sends `count` messages of `size` bytes between random pairs of members, runs for
/// `limit`, and checks every delivery against what was sent.
pub fn random_messages(sim: &mut Sim, count: usize, size: usize, limit: Duration) -> MessageReport {
    let mut report = MessageReport::default();
    let mut expected = std::collections::HashMap::new(); // n -> (from, to, body)
    let mut by_tx = std::collections::HashMap::new(); // (sender, tx) -> n
    for n in 0..count as u64 {
        let (Some(a), Some(b)) = (sim.random_member(), sim.random_member()) else {
            break;
        };
        if a == b {
            continue;
        }
        let body = message_body(sim, n, size);
        let to = sim.node(b).did();
        report.sent += 1;
        match sim.send(a, to, body.clone()) {
            Ok(tx) => {
                by_tx.insert((a, tx), n);
                expected.insert(n, (sim.node(a).did(), b, body));
            }
            Err(_) => report.undelivered += 1,
        }
    }
    sim.run_for(limit);
    for (ix, u) in sim.take_undelivered() {
        if let Some(n) = by_tx.remove(&(ix, u.tx)) {
            expected.remove(&n);
            report.undelivered += 1;
        }
    }
    let receivers: std::collections::BTreeSet<NodeIx> = expected.values().map(|e| e.1).collect();
    for b in receivers {
        for d in sim.take_inbox(b) {
            let n = d.body.get(..8).map(|h| u64::from_be_bytes(h.try_into().unwrap_or_default()));
            match n.and_then(|n| expected.remove(&n).map(|e| (n, e))) {
                Some((_, (from, to, body))) if from == d.from && to == b && body == d.body => {
                    report.intact += 1;
                    report.hops.push(d.hops);
                }
                _ => report.corrupt += 1,
            }
        }
    }
    report.lost = expected.len() as u64;
    report
}

/// What one large transfer did.
#[derive(Clone, Debug)]
pub struct TransferReport {
    pub bytes: usize,
    /// Hops the message took, if it arrived.
    pub hops: Option<u8>,
    pub intact: bool,
    /// Virtual time from `send` to delivery (or to giving up).
    pub took: Duration,
}

/// Finds a pair of members whose route takes at least `min_hops` (probing with small
/// messages; the longest route found otherwise), sends them `size` bytes of patterned
/// data, and waits up to `limit` of virtual time for it.
pub fn large_transfer(sim: &mut Sim, min_hops: u8, size: usize, limit: Duration) -> TransferReport {
    let members = sim.members();
    let mut best: Option<(u8, NodeIx, NodeIx)> = None;
    for pair in members.windows(2).step_by(7) {
        let to = sim.node(pair[1]).did();
        if sim.send(pair[0], to, b"probe".to_vec()).is_err() {
            continue;
        }
        sim.run_for(Duration::from_secs(2));
        if let Some(d) = sim.take_inbox(pair[1]).first() {
            if best.is_none_or(|b| d.hops > b.0) {
                best = Some((d.hops, pair[0], pair[1]));
            }
            if d.hops >= min_hops {
                break;
            }
        }
    }
    let mut report = TransferReport { bytes: size, hops: None, intact: false, took: Duration::from_millis(0) };
    let Some((_, a, b)) = best else { return report };
    let body: Vec<u8> = (0..size as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let to = sim.node(b).did();
    let start = sim.now();
    if sim.send(a, to, body.clone()).is_err() {
        return report;
    }
    let mut got = Vec::new();
    while got.is_empty() && sim.now() < start + limit {
        sim.run_for(Duration::from_millis(100));
        got = sim.take_inbox(b);
    }
    report.took = sim.now().saturating_since(start);
    if let [d] = &got[..] {
        report.hops = Some(d.hops);
        report.intact = d.body == body && d.from == sim.node(a).did();
    }
    report
}
