//! How a frame finds its next hop when frames travel only over open links (the
//! browser): straight to a linked destination; else back the way the destination's own
//! frames came (a reverse-path hint: how an answer reaches a joiner linked only to its
//! bootstrap peer, many hops away, that no ring member can route to yet); else greedy
//! over linked ring members. Links to nodes outside the routing table (a joiner that
//! knows only its bootstrap peer, an application's direct link) are dead ends for
//! anyone else's frames: two joiners bootstrapped through one node would otherwise take
//! each other's signalling into a link with no way on. They carry frames only when no
//! member is linked.
//!
//! A hint is a claim by the link peer that handed the frame over, so the table is shaped
//! so that no peer can move what others are judged by:
//! - an origin's live hint is never displaced by a frame from another link (first come,
//!   first kept); frames over the same link keep it alive;
//! - each link peer holds at most [`PER_LINK`] hints, and a new claim of a full link
//!   evicts that link's own oldest one: a popular bootstrap peer keeps working for its
//!   newest joiners, and a flood from one peer only ages out its own claims;
//! - when all [`MAX`] are taken, the link holding the most gives up its oldest.

use crate::chord::RoutingTable;
use crate::did::Did;
use crate::time::{Duration, Instant};
use std::collections::{BTreeMap, BTreeSet};

/// The link a frame for `dest` goes out on, never its `origin` nor a relay on its
/// `path`; `hint`: the link `dest`'s own frames came in over lately, used only for a
/// node the table does not know (a hint is a claim: it never overrides the table).
pub fn next_link(table: &RoutingTable, links: &BTreeSet<Did>, dest: Did, origin: Did, path: &[Did], hint: Option<Did>) -> Option<Did> {
    if links.contains(&dest) {
        return Some(dest);
    }
    let usable = |n: &Did| *n != origin && !path.contains(n) && links.contains(n);
    if let Some(via) = hint.filter(|v| usable(v) && !table.knows(dest)) {
        return Some(via);
    }
    // No "I own it, so it does not exist" shortcut: a node still joining is linked only
    // to its bootstrap peer, which the frame may yet reach.
    let (me, span) = (table.me(), table.me().distance_to(dest));
    let members = links.iter().copied().filter(|n| usable(n) && table.knows(*n));
    greedy(me, span, members).or_else(|| greedy(me, span, links.iter().copied().filter(usable)))
}

/// Of `hops`, the closest before `me + span` (the key routed to), else the first after it.
fn greedy(me: Did, span: Did, hops: impl Iterator<Item = Did>) -> Option<Did> {
    let (mut before, mut after): (Option<Did>, Option<Did>) = (None, None);
    for n in hops {
        let d = me.distance_to(n);
        if d < span {
            before = before.filter(|b| me.distance_to(*b) > d).or(Some(n));
        } else {
            after = after.filter(|a| me.distance_to(*a) < d).or(Some(n));
        }
    }
    before.or(after)
}

/// Hints kept at once, per link peer they point to, and for how long.
pub const MAX: usize = 1024;
pub const PER_LINK: usize = 64;
pub const TTL: Duration = Duration(30_000);

#[derive(Clone, Copy, Debug)]
struct Hint {
    via: Did,
    until: Instant,
    noted: Instant,
}

#[derive(Default, Debug)]
pub struct Hints {
    by_origin: BTreeMap<Did, Hint>,
    /// Hints per link peer (one entry per link holding any: a short list).
    per_link: Vec<(Did, usize)>,
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

    /// `origin`'s frame came in over the link to `via`.
    pub fn note(&mut self, now: Instant, origin: Did, via: Did) {
        if let Some(h) = self.by_origin.get_mut(&origin) {
            if h.until > now {
                if h.via == via {
                    h.until = now + TTL;
                }
                return;
            }
            self.remove(origin);
        }
        if self.count(via) >= PER_LINK {
            self.evict_oldest_of(via);
        } else if self.by_origin.len() >= MAX {
            let Some(&(fullest, _)) = self.per_link.iter().max_by_key(|(_, n)| *n) else { return };
            self.evict_oldest_of(fullest);
        }
        self.by_origin.insert(origin, Hint { via, until: now + TTL, noted: now });
        match self.per_link.iter_mut().find(|(l, _)| *l == via) {
            Some((_, n)) => *n += 1,
            None => self.per_link.push((via, 1)),
        }
    }

    /// The link to `via` fell: what pointed over it is gone.
    pub fn drop_link(&mut self, via: Did) {
        if self.count(via) > 0 {
            self.per_link.retain(|(l, _)| *l != via);
            self.by_origin.retain(|_, h| h.via != via);
        }
    }

    fn count(&self, via: Did) -> usize {
        self.per_link.iter().find(|(l, _)| *l == via).map_or(0, |(_, n)| *n)
    }

    pub fn expire(&mut self, now: Instant) {
        let old: Vec<Did> = self.by_origin.iter().filter(|(_, h)| h.until <= now).map(|(&o, _)| o).collect();
        for o in old {
            self.remove(o);
        }
    }

    fn evict_oldest_of(&mut self, via: Did) {
        let oldest = self.by_origin.iter().filter(|(_, h)| h.via == via).min_by_key(|(_, h)| h.noted).map(|(&o, _)| o);
        if let Some(o) = oldest {
            self.remove(o);
        }
    }

    fn remove(&mut self, origin: Did) {
        let Some(h) = self.by_origin.remove(&origin) else { return };
        if let Some(i) = self.per_link.iter().position(|(l, _)| *l == h.via) {
            self.per_link[i].1 -= 1;
            if self.per_link[i].1 == 0 {
                self.per_link.swap_remove(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_for_others_skip_links_outside_the_ring_while_a_member_is_linked() {
        // Node 100 bootstraps joiners 150 and 160 (links, not in its table); 120 is its
        // successor and 300 a finger. Before this rule, a frame for 200 went to 160, the
        // closest link before it, which has no way on (the stuck joins in Chromium).
        let me = did(100);
        let mut table = RoutingTable::new(me, 8);
        table.set_successors([did(120)]);
        assert!(table.set_finger(7, did(300)));
        let links: BTreeSet<Did> = [150, 160, 120, 300].into_iter().map(did).collect();
        assert_eq!(next_link(&table, &links, did(200), did(50), &[], None), Some(did(120)));
        // The origin is never sent its own frame back; a linked destination gets it directly.
        assert_eq!(next_link(&table, &links, did(200), did(120), &[], None), Some(did(300)));
        assert_eq!(next_link(&table, &links, did(160), did(150), &[], None), Some(did(160)));
        // A hint leads back to a node the table does not know, never to one it knows.
        assert_eq!(next_link(&table, &links, did(155), did(120), &[], Some(did(150))), Some(did(150)));
        assert_eq!(next_link(&table, &links, did(155), did(150), &[], Some(did(150))), Some(did(120)));
        // With no member usable, the other links are tried after all.
        assert_eq!(next_link(&table, &links, did(200), did(120), &[did(300)], None), Some(did(160)));
        assert_eq!(next_link(&table, &links, did(200), did(120), &[did(300), did(150), did(160)], None), None);
    }

    fn did(n: u64) -> Did {
        Did::from_u64(n)
    }

    #[test]
    fn a_full_link_gives_up_its_own_oldest_and_never_anothers() {
        let mut h = Hints::default();
        let t = Instant(1_000);
        h.note(t, did(1), did(900)); // honest origin over an honest link
        for i in 0..(PER_LINK as u64 * 4) {
            h.note(Instant(1_000 + i), did(10_000 + i), did(901)); // one peer claims many
        }
        assert_eq!(h.get(t, did(1)), Some(did(900)));
        assert_eq!(h.count(did(901)), PER_LINK);
        // The newest claims of the flooding link are the ones kept.
        assert!(h.get(t, did(10_000 + PER_LINK as u64 * 4 - 1)).is_some());
        assert!(h.get(t, did(10_000)).is_none());
        // Another link cannot take over a live hint; the same link keeps it alive.
        h.note(Instant(20_000), did(1), did(901));
        h.note(Instant(20_000), did(1), did(900));
        assert_eq!(h.get(Instant(45_000), did(1)), Some(did(900)));
        assert_eq!(h.get(Instant(50_001), did(1)), None);
    }

    #[test]
    fn the_global_bound_takes_from_the_fullest_link() {
        let mut h = Hints::default();
        let mut n = 0u64;
        for link in 0..(MAX / PER_LINK) as u64 {
            for _ in 0..PER_LINK {
                h.note(Instant(n), did(100_000 + n), did(link));
                n += 1;
            }
        }
        assert_eq!(h.len(), MAX);
        h.drop_link(did(0));
        h.note(Instant(n), did(1), did(5_000)); // a small link is admitted
        for i in 0..PER_LINK as u64 {
            h.note(Instant(n + i), did(200_000 + i), did(5_001));
        }
        assert!(h.len() <= MAX);
        assert_eq!(h.get(Instant(n), did(1)), Some(did(5_000)));
        h.expire(Instant(n + 40_000));
        assert_eq!(h.len(), 0);
        assert!(h.per_link.is_empty());
    }
}
