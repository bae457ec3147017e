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
    let limit = sim.answer_limit();
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
    let limit = sim.answer_limit();
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
