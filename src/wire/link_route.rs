//! How a frame finds its next hop when frames travel only over open links (the
//! browser): straight to a linked destination; else back the way the destination's own
//! frames came (a reverse-path hint: how an answer reaches a joiner linked only to its
//! bootstrap peer, many hops away, that no ring member can route to yet); else greedy.
//! Links to nodes outside the routing table (a joiner that knows only its bootstrap
//! peer, an application's direct link) are dead ends for anyone else's frames: two
//! joiners bootstrapped through one node would otherwise take each other's signalling
//! into a link with no way on. So greedy goes over linked members (closest before the
//! destination, else the first after it) and over other links only when no member is
//! usable. (Trying any link before the destination ahead of a member past it left
//! joins stuck in 1 of 6 browser runs of 24 providers: a member past the destination
//! keeps the frame in the ring, a non-member link is often a dead end.)
//!
//! A hint is a claim nobody authenticates at a relay, so the table is shaped so that
//! no peer can move what others are judged by:
//! - an origin's live hint is never displaced by a frame from another link (first come,
//!   first kept); frames over the same link keep it alive, but no hint lives longer
//!   than [`LIFETIME`] from when it was noted;
//! - hints are charged to the link peer that handed the frame over *and* to the hop
//!   before it (or the origin, for a frame that link peer sent itself), which that
//!   link peer checked: [`PER_GROUP`] (half a link's share) per such pair, [`PER_LINK`]
//!   per link peer, so a node that forges origins through an honest relay next to us
//!   ages out at most half of that relay's hints, and a popular bootstrap peer's own
//!   joiners (each its own group) keep the other half. Further away the relay before
//!   the last one is the same for forged and honest frames: there a forger behind an
//!   honest relay can age out that relay's hints (README, Known weaknesses);
//! - a full group, link or table evicts the least recently refreshed hint of that
//!   group, link, or (expired hints first) of the link holding the most.

use crate::chord::RoutingTable;
use crate::did::Did;
use crate::time::{Duration, Instant};
use std::collections::HashMap;

/// The link a frame for `dest` goes out on, never its `origin` nor a relay on its
/// `path`; `hint`: the link `dest`'s own frames came in over lately, used only for a
/// node the table does not know (a hint is a claim: it never overrides the table).
/// `links` holds each open link once, in any order (a node has a few dozen).
pub fn next_link(table: &RoutingTable, links: &[Did], dest: Did, origin: Did, path: &[Did], hint: Option<Did>) -> Option<Did> {
    if links.contains(&dest) {
        return Some(dest);
    }
    let usable = |n: &Did| *n != origin && !path.contains(n);
    if let Some(via) = hint.filter(|v| usable(v) && links.contains(v) && !table.knows(dest)) {
        return Some(via);
    }
    // No "I own it, so it does not exist" shortcut: a node still joining is linked only
    // to its bootstrap peer, which the frame may yet reach.
    let (me, span) = (table.me(), table.me().distance_to(dest));
    let members = greedy(me, span, links.iter().copied().filter(|n| usable(n) && table.knows(*n)));
    let any = greedy(me, span, links.iter().copied().filter(usable));
    members.0.or(members.1).or(any.0).or(any.1)
}

/// Of `hops`: the closest before `me + span` (the key routed to), and the first after it.
fn greedy(me: Did, span: Did, hops: impl Iterator<Item = Did>) -> (Option<Did>, Option<Did>) {
    let (mut before, mut after): (Option<Did>, Option<Did>) = (None, None);
    for n in hops {
        let d = me.distance_to(n);
        if d < span {
            before = before.filter(|b| me.distance_to(*b) > d).or(Some(n));
        } else {
            after = after.filter(|a| me.distance_to(*a) < d).or(Some(n));
        }
    }
    (before, after)
}

/// Hints kept at once, per link peer they point to, per (link peer, hop before it).
pub const MAX: usize = 1024;
pub const PER_LINK: usize = 64;
pub const PER_GROUP: usize = PER_LINK / 2;
/// A hint lives this long after its last refresh, and never beyond [`LIFETIME`].
pub const TTL: Duration = Duration(30_000);
pub const LIFETIME: Duration = Duration(60_000);

#[derive(Clone, Copy, Debug)]
struct Hint {
    via: Did,
    /// The hop before `via` (or the origin, if `via` sent the frame itself).
    second: Did,
    until: Instant,
    noted: Instant,
}

/// The hints, by origin. Counts per link and per group are taken from it when a hint is
/// noted (one pass over at most [`MAX`] entries), so no second table can drift from it.
#[derive(Default, Debug)]
pub struct Hints {
    by_origin: HashMap<Did, Hint>,
}

impl Hints {
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_origin.len()
    }

    /// The link `origin`'s frames came in over lately, if any.
    pub fn get(&self, now: Instant, origin: Did) -> Option<Did> {
        self.by_origin.get(&origin).filter(|h| h.until > now).map(|h| h.via)
    }

    /// `origin`'s frame came in over the link to `via`, which had it from `second`.
    pub fn note(&mut self, now: Instant, origin: Did, via: Did, second: Did) {
        if let Some(h) = self.by_origin.get_mut(&origin) {
            if h.until > now {
                if h.via == via {
                    h.until = (now + TTL).min(h.noted + LIFETIME);
                }
                return;
            }
            self.by_origin.remove(&origin);
        }
        let (mut in_link, mut in_group) = (0, 0);
        for h in self.by_origin.values().filter(|h| h.via == via) {
            in_link += 1;
            in_group += usize::from(h.second == second);
        }
        if in_group >= PER_GROUP {
            self.evict(|h| h.via == via && h.second == second);
        } else if in_link >= PER_LINK {
            self.evict(|h| h.via == via);
        } else if self.by_origin.len() >= MAX {
            if self.by_origin.values().any(|h| h.until <= now) {
                self.evict(|h| h.until <= now);
            } else if let Some(fullest) = self.fullest_link() {
                self.evict(|h| h.via == fullest);
            }
        }
        self.by_origin.insert(origin, Hint { via, second, until: now + TTL, noted: now });
    }

    /// The link to `via` fell: what pointed over it is gone.
    pub fn drop_link(&mut self, via: Did) {
        self.by_origin.retain(|_, h| h.via != via);
    }

    pub fn expire(&mut self, now: Instant) {
        self.by_origin.retain(|_, h| h.until > now);
    }

    #[cfg(test)]
    fn count(&self, via: Did) -> usize {
        self.by_origin.values().filter(|h| h.via == via).count()
    }

    /// The link peer holding the most hints.
    fn fullest_link(&self) -> Option<Did> {
        let mut per_link: Vec<(Did, usize)> = Vec::new();
        for h in self.by_origin.values() {
            match per_link.iter_mut().find(|(l, _)| *l == h.via) {
                Some((_, n)) => *n += 1,
                None => per_link.push((h.via, 1)),
            }
        }
        // Ties go to the greatest DID, whatever order the table iterates in.
        per_link.into_iter().max_by_key(|&(l, n)| (n, l)).map(|(l, _)| l)
    }

    /// Removes the least recently refreshed hint that `which` selects.
    fn evict(&mut self, which: impl Fn(&Hint) -> bool) {
        let victim = self.by_origin.iter().filter(|(_, h)| which(h)).min_by_key(|&(&o, h)| (h.until, o)).map(|(&o, _)| o);
        debug_assert!(victim.is_some(), "a full group, link or table has a hint to evict");
        if let Some(o) = victim {
            self.by_origin.remove(&o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_for_others_prefer_members_before_the_destination() {
        // Node 100 bootstraps joiners 150 and 160 (links, not in its table); 120 is its
        // successor and 300 a finger. Before this rule, a frame for 200 went to 160, the
        // closest link before it, which has no way on (the stuck joins in Chromium).
        let me = did(100);
        let mut table = RoutingTable::new(me, 8);
        table.set_successors([did(120)]);
        assert!(table.set_finger(7, did(300)));
        let links: Vec<Did> = [150, 160, 120, 300].into_iter().map(did).collect();
        assert_eq!(next_link(&table, &links, did(200), did(50), &[], None), Some(did(120)));
        // The origin is never sent its own frame back (then a member past the
        // destination beats a non-member link before it); a linked destination gets it.
        assert_eq!(next_link(&table, &links, did(200), did(120), &[], None), Some(did(300)));
        assert_eq!(next_link(&table, &links, did(160), did(150), &[], None), Some(did(160)));
        // A hint leads back to a node the table does not know, never to one it knows.
        assert_eq!(next_link(&table, &links, did(155), did(120), &[], Some(did(150))), Some(did(150)));
        assert_eq!(next_link(&table, &links, did(155), did(150), &[], Some(did(150))), Some(did(120)));
        // A known (second-hand, unlinked) node is routed to by the table, not by a hint.
        table.set_successors([did(120), did(250)]);
        assert_eq!(next_link(&table, &links, did(250), did(50), &[], Some(did(150))), Some(did(120)));
        // With no member usable, the other links are tried after all.
        assert_eq!(next_link(&table, &links, did(200), did(120), &[did(300)], None), Some(did(160)));
        assert_eq!(next_link(&table, &links, did(200), did(120), &[did(300), did(150), did(160)], None), None);
    }

    fn did(n: u64) -> Did {
        Did::from_u64(n)
    }

    #[test]
    fn a_full_link_gives_up_its_least_recently_refreshed_and_never_anothers() {
        let mut h = Hints::default();
        let t = Instant(1_000);
        h.note(t, did(1), did(900), did(1)); // honest origin over an honest link
                                             // One peer claims many origins of its own (each its own group).
        for i in 0..(PER_LINK as u64 * 4) {
            h.note(Instant(1_000 + i), did(10_000 + i), did(901), did(10_000 + i));
        }
        assert_eq!(h.get(t, did(1)), Some(did(900)));
        assert_eq!(h.count(did(901)), PER_LINK);
        assert!(h.get(t, did(10_000 + PER_LINK as u64 * 4 - 1)).is_some(), "the newest are kept");
        assert!(h.get(t, did(10_000)).is_none());
        // A refreshed hint outlives newer ones that were not refreshed.
        h.note(Instant(2_000), did(10_000 + PER_LINK as u64 * 3), did(901), did(0)); // the link's oldest, refreshed
        h.note(Instant(2_001), did(99_999), did(901), did(99_999));
        assert!(h.get(Instant(2_001), did(10_000 + PER_LINK as u64 * 3)).is_some());
        assert!(h.get(Instant(2_001), did(10_000 + PER_LINK as u64 * 3 + 1)).is_none());
        // Another link cannot take over a live hint; the same link keeps it alive, for
        // at most LIFETIME.
        h.note(Instant(20_000), did(1), did(901), did(1));
        h.note(Instant(20_000), did(1), did(900), did(1));
        assert_eq!(h.get(Instant(45_000), did(1)), Some(did(900)));
        assert_eq!(h.get(Instant(50_001), did(1)), None);
        let mut h = Hints::default();
        for k in 0..3u64 {
            h.note(Instant(k * 20_000), did(1), did(900), did(1));
        }
        assert_eq!(h.get(Instant(LIFETIME.as_millis() - 1), did(1)), Some(did(900)));
        assert_eq!(h.get(Instant(LIFETIME.as_millis()), did(1)), None, "refreshing never extends past LIFETIME");
        // An origin whose hint expired is noted afresh, over whatever link comes first.
        h.note(Instant(200_000), did(1), did(901), did(1));
        assert_eq!(h.get(Instant(200_001), did(1)), Some(did(901)));
        assert_eq!((h.count(did(900)), h.count(did(901)), h.len()), (0, 1, 1));
        h.drop_link(did(901));
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn a_forger_behind_an_honest_relay_ages_out_only_its_own_group() {
        // Relay 900 carries its joiners 1..=30 (each frame sent by the joiner itself:
        // group = the origin) and frames that 777, two hops away, forged under fresh
        // origins (group 777).
        let mut h = Hints::default();
        for j in 1..=30u64 {
            h.note(Instant(j), did(j), did(900), did(j));
        }
        for f in 0..10_000u64 {
            h.note(Instant(100 + f), did(50_000 + f), did(900), did(777));
        }
        assert!((1..=30).all(|j| h.get(Instant(10_100), did(j)) == Some(did(900))), "every joiner keeps its hint");
        assert_eq!(h.count(did(900)), 30 + PER_GROUP);
    }

    #[test]
    fn the_global_bound_takes_expired_hints_first_then_from_the_fullest_link() {
        let mut h = Hints::default();
        let mut n = 0u64;
        // 16 links with 64 hints each (groups of 8): the table is full.
        for link in 0..(MAX / PER_LINK) as u64 {
            for k in 0..PER_LINK as u64 {
                h.note(Instant(n), did(100_000 + n), did(link), did(1_000 + k / PER_GROUP as u64));
                n += 1;
            }
        }
        assert_eq!(h.len(), MAX);
        // A newcomer link, while the table is full: the fullest link (all tie at 64)
        // gives up one hint; the newcomer is admitted.
        h.note(Instant(n), did(1), did(5_000), did(1));
        assert_eq!(h.len(), MAX);
        assert_eq!(h.get(Instant(n), did(1)), Some(did(5_000)));
        assert_eq!(h.count(did(5_000)), 1);
        assert_eq!((0..16u64).map(|l| h.count(did(l))).sum::<usize>(), MAX - 1);
        assert_eq!((0..16u64).filter(|&l| h.count(did(l)) == PER_LINK - 1).count(), 1);
        // Expired hints go before any live one: half of them have expired by `later`.
        let later = Instant(TTL.as_millis() + 500);
        assert!(h.by_origin.contains_key(&did(100_000)));
        h.note(later, did(2), did(5_001), did(2));
        assert!(!h.by_origin.contains_key(&did(100_000)), "the first expired one went");
        assert_eq!(h.get(later, did(1)), Some(did(5_000)));
        assert_eq!(h.get(later, did(2)), Some(did(5_001)));
        h.expire(later + TTL);
        assert_eq!(h.len(), 0);
    }
}
