//! Lying peers for the simulator: nodes whose answers lie, and unsolicited answers that
//! name DIDs no node has (ghosts), to show what a liar can and cannot do to honest nodes.

use super::{NodeIx, Payload, Sim, What};
use crate::chord::{self, Message};
use crate::Did;

impl Sim {
    /// From now on node `ix` lies: every stabilization answer it gives names a random
    /// member as its predecessor and random members as its successors (plausible, real
    /// DIDs), and every ping answer a random predecessor. It still routes honestly.
    pub fn make_liar(&mut self, ix: NodeIx) {
        self.liars[ix as usize] = true;
    }

    pub fn is_liar(&self, ix: NodeIx) -> bool {
        self.liars[ix as usize]
    }

    /// Every live liar sends `per_liar` unsolicited messages to random honest members:
    /// answers (`Found`, `Failed`, `StabilizeReply`, `Pong`, `HopAck`) under random tags
    /// that name ghost DIDs (which no node has) as owners, predecessors and successors.
    pub fn liar_noise(&mut self, per_liar: usize) {
        let liars: Vec<NodeIx> =
            (0..self.slots.len() as NodeIx).filter(|&i| self.liars[i as usize] && self.slots[i as usize].is_member()).collect();
        let honest: Vec<NodeIx> = self.members().into_iter().filter(|&i| !self.liars[i as usize]).collect();
        if honest.is_empty() {
            return;
        }
        for l in liars {
            let from = self.slots[l as usize].node.did();
            for _ in 0..per_liar {
                let to = honest[self.rng.below(honest.len() as u64) as usize];
                let ghost = self.ghost();
                let (tag, key) = (self.rng.next_u64(), self.rng.did());
                let msg = match self.rng.below(5) {
                    0 => Message::Found { tag, key, owner: ghost, hops: 1 },
                    1 => Message::Failed { tag, key, reason: chord::FailReason::Unreachable },
                    2 => Message::StabilizeReply { tag, predecessor: Some(ghost), successors: vec![ghost, self.ghost()] },
                    3 => Message::Pong { tag, predecessor: Some(ghost) },
                    _ => Message::HopAck { tag },
                };
                self.stats.sent += 1;
                let at = self.now + self.latency(from, self.slots[to as usize].node.did());
                self.schedule(at, What::Deliver { to, from, payload: Payload::Msg(msg) });
            }
        }
    }

    fn ghost(&mut self) -> Did {
        let g = self.rng.did();
        self.ghosts.insert(g);
        g
    }

    /// A random live member's DID.
    fn random_member_did(&mut self) -> Did {
        let k = self.rng.below(self.oracle.len().max(1) as u64) as usize;
        self.oracle.nth(k).unwrap_or(Did::ZERO)
    }

    /// Rewrites a liar's honest answer into a plausible lie.
    pub(super) fn lie(&mut self, msg: Message) -> Message {
        match msg {
            Message::StabilizeReply { tag, successors, .. } => {
                let n = successors.len().max(1);
                let lies = (0..n).map(|_| self.random_member_did()).collect();
                Message::StabilizeReply { tag, predecessor: Some(self.random_member_did()), successors: lies }
            }
            Message::Pong { tag, .. } => Message::Pong { tag, predecessor: Some(self.random_member_did()) },
            m => m,
        }
    }
}
