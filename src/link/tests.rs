use super::*;

fn did(n: u64) -> Did {
    let mut b = [0u8; 20];
    b[12..].copy_from_slice(&n.to_be_bytes());
    Did::from_bytes(b)
}

fn ms(n: u64) -> Instant {
    Instant(n)
}

fn drain(l: &mut Links) -> Vec<LinkOutput> {
    std::iter::from_fn(|| l.poll_output()).collect()
}

fn is_down(out: &[LinkOutput], p: Did, open: bool) -> bool {
    out.iter().any(|o| matches!(o, LinkOutput::Down { peer, was_open, .. } if *peer == p && *was_open == open))
}

fn cand(n: u32) -> Candidate {
    Candidate { candidate: format!("candidate:{n} 1 udp 1 127.0.0.1 {n} typ host"), mid: Some("0".into()), mline: Some(0) }
}

/// A node with a manual link open to `via` (as after a copy-paste handshake).
fn linked(me: u64, via: u64, cfg: LinkConfig) -> Links {
    let mut l = Links::new(did(me), cfg, me * 1000);
    let conn = l.answer_manual(ms(0), did(via), "offer".into()).unwrap();
    l.handle_open(ms(0), conn);
    drain(&mut l);
    l
}

/// Opens a ring-signalled link from `a` to `b` by passing every signal across; returns
/// what each side output on the way.
fn handshake(a: &mut Links, b: &mut Links, now: Instant, first: Vec<u8>) -> (Vec<LinkOutput>, Vec<LinkOutput>) {
    let (ad, bd) = (a.me, b.me);
    assert!(a.transmit(now, bd, first));
    let mut seen_a = drain(a);
    let Some(&LinkOutput::Create { conn: ac, answer_to: None }) = seen_a.first() else { panic!("{seen_a:?}") };
    a.handle_local_candidate(now, ac, cand(1)); // gathered before the offer left
    a.handle_local_description(now, ac, "offer-sdp".into());
    let out = drain(a);
    let signals: Vec<LinkMsg> =
        out.iter().filter_map(|o| if let LinkOutput::Signal { msg, .. } = o { Some(msg.clone()) } else { None }).collect();
    assert!(matches!(signals[0], LinkMsg::Offer { .. }) && matches!(signals[1], LinkMsg::Candidate { .. }), "{signals:?}");
    seen_a.extend(out);
    // A candidate before its offer has no connection to go to (none is held for a
    // stranger's negotiation): dropped. After it, it is added.
    b.handle_signal(now, ad, signals[1].clone());
    assert!(drain(b).is_empty());
    b.handle_signal(now, ad, signals[0].clone());
    b.handle_signal(now, ad, signals[1].clone());
    let mut seen_b = drain(b);
    let Some(&LinkOutput::Create { conn: bc, answer_to: Some(_) }) = seen_b.first() else { panic!("{seen_b:?}") };
    assert!(seen_b.iter().any(|o| matches!(o, LinkOutput::AddCandidate { conn, .. } if *conn == bc)), "{seen_b:?}");
    b.handle_local_description(now, bc, "answer-sdp".into());
    let out = drain(b);
    let Some(LinkOutput::Signal { to, msg: answer }) = out.first().cloned() else { panic!("{out:?}") };
    assert_eq!(to, ad);
    seen_b.extend(out);
    a.handle_signal(now, bd, answer);
    let out = drain(a);
    assert!(matches!(out.first(), Some(LinkOutput::SetAnswer { conn, .. }) if *conn == ac), "{out:?}");
    seen_a.extend(out);
    a.handle_open(now, ac);
    b.handle_open(now, bc);
    seen_a.extend(drain(a));
    seen_b.extend(drain(b));
    (seen_a, seen_b)
}

#[test]
fn a_transmit_opens_a_link_through_the_ring_and_what_waited_goes_first_in_order() {
    let (mut a, mut b) = (linked(1, 99, LinkConfig::default()), linked(2, 99, LinkConfig::default()));
    let routed = |n: u8| vec![crate::wire::ROUTED_TAG, n];
    let (out_a, out_b) = {
        let r = handshake(&mut a, &mut b, ms(10), routed(1));
        assert!(a.transmit(ms(10), did(2), routed(3)));
        r
    };
    // Queued while opening, then sent in order once open; Up before the sends.
    let after_open: Vec<_> = out_a.iter().skip_while(|o| !matches!(o, LinkOutput::Up { .. })).cloned().collect();
    assert!(
        matches!(&after_open[..], [LinkOutput::Up { peer }, LinkOutput::Send { bytes, .. }] if *peer == did(2) && *bytes == routed(1)),
        "{after_open:?}"
    );
    assert!(matches!(drain(&mut a)[..], [LinkOutput::Send { ref bytes, .. }] if *bytes == routed(3)));
    assert!(out_b.iter().any(|o| *o == LinkOutput::Up { peer: did(1) }));
    assert!(a.is_open(did(2)) && b.is_open(did(1)));
    // Late candidates no longer travel once open.
    let conn = a.conns.iter().find(|c| c.peer == Some(did(2))).map(|c| c.id).unwrap();
    a.handle_local_candidate(ms(11), conn, cand(9));
    assert!(drain(&mut a).is_empty());
    // Credit: what the channel sent on beyond low water goes back to the wire.
    let low = a.config().low_water;
    assert_eq!(a.handle_buffered(conn, low + 10), None, "4 bytes out, all still buffered");
    assert_eq!(a.handle_buffered(conn, 0), Some((did(2), 4)));
    assert_eq!(a.handle_buffered(conn, 0), None);
}

#[test]
fn nothing_opens_without_an_open_link_to_carry_the_offer() {
    let mut l = Links::new(did(1), LinkConfig::default(), 0);
    assert!(!l.transmit(ms(0), did(2), vec![1]));
    assert_eq!(l.connect(ms(0), did(2)), None);
    assert!(drain(&mut l).is_empty() && l.is_empty());
    assert!(!l.transmit(ms(0), did(1), vec![1]), "never to itself");
}

#[test]
fn the_queue_for_an_opening_link_is_bounded() {
    let cfg = LinkConfig { max_queued: 100, ..LinkConfig::default() };
    let mut a = linked(1, 99, cfg);
    assert!(a.transmit(ms(0), did(2), vec![0; 60]));
    assert!(!a.transmit(ms(0), did(2), vec![0; 60]), "over 100 bytes waiting");
    assert!(a.transmit(ms(0), did(2), vec![0; 40]));
}

#[test]
fn an_opening_link_times_out_and_is_reported_down() {
    let mut a = linked(1, 99, LinkConfig::default());
    a.transmit(ms(0), did(2), vec![1]);
    drain(&mut a);
    let deadline = a.poll_timeout().unwrap();
    assert_eq!(deadline, ms(10_000));
    a.handle_timeout(ms(9_999));
    assert!(drain(&mut a).is_empty());
    a.handle_timeout(deadline);
    let out = drain(&mut a);
    assert!(
        matches!(&out[..], [LinkOutput::Close { reason: CloseReason::TimedOut, .. }, LinkOutput::Down { peer, was_open: false, .. }] if *peer == did(2)),
        "{out:?}"
    );
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn the_cap_closes_the_least_recently_used_never_a_neighbour_a_young_or_an_opening_link() {
    let cfg = LinkConfig { max_links: 4, ..LinkConfig::default() };
    let mut a = linked(1, 99, cfg);
    // Links to 2..=4 open at t = 0.
    for p in 2..=4 {
        let conn = a.answer_manual(ms(0), did(p), "o".into()).unwrap();
        a.handle_open(ms(0), conn);
    }
    a.protect(Some(did(99)), Some(did(2)));
    for p in [3, 4] {
        a.transmit(ms(100 + p), did(p), vec![1]);
    }
    drain(&mut a);
    // All young (< 5 s): a fifth connection does not start, nothing is closed.
    assert!(!a.transmit(ms(1_000), did(5), vec![1]));
    assert_eq!(a.len(), 4);
    assert!(drain(&mut a).is_empty());
    // Once old, the least recently used unprotected one goes (3: used at 103).
    assert!(a.transmit(ms(5_000), did(5), vec![1]));
    let out = drain(&mut a);
    assert!(is_down(&out, did(3), true), "{out:?}");
    assert_eq!(a.len(), 4);
    // The next one evicts 4; 99 and 2 (protected) and 5 (opening) stay.
    assert!(a.transmit(ms(6_000), did(6), vec![1]));
    let out = drain(&mut a);
    assert!(is_down(&out, did(4), true), "{out:?}");
    assert!(a.by_peer(did(99)).is_some() && a.by_peer(did(2)).is_some() && a.by_peer(did(5)).is_some());
    // Nothing left to evict: another does not start.
    assert!(!a.transmit(ms(6_000), did(7), vec![1]));
    assert_eq!(a.len(), 4);
}

#[test]
fn glare_the_larger_did_s_offer_wins() {
    let (mut small, mut large) = (linked(1, 99, LinkConfig::default()), linked(2, 99, LinkConfig::default()));
    let offer = |l: &mut Links, to: Did| {
        l.transmit(ms(0), to, vec![1]);
        let conn = match drain(l)[..] {
            [LinkOutput::Create { conn, .. }] => conn,
            ref o => panic!("{o:?}"),
        };
        l.handle_local_description(ms(0), conn, "sdp".into());
        match drain(l).pop() {
            Some(LinkOutput::Signal { msg, .. }) => msg,
            o => panic!("{o:?}"),
        }
    };
    let (from_small, from_large) = (offer(&mut small, did(2)), offer(&mut large, did(1)));
    large.handle_signal(ms(1), did(1), from_small);
    assert!(drain(&mut large).is_empty(), "the larger DID keeps its own offer");
    small.handle_signal(ms(1), did(2), from_large.clone());
    let out = drain(&mut small);
    assert!(matches!(out[0], LinkOutput::Close { reason: CloseReason::Replaced, .. }), "{out:?}");
    assert!(out.iter().any(|o| matches!(o, LinkOutput::Create { answer_to: Some(_), .. })), "{out:?}");
    // The same offer again is a replay: ignored.
    small.handle_signal(ms(2), did(2), from_large);
    assert!(drain(&mut small).is_empty());
}

#[test]
fn strangers_offers_never_close_our_links_and_hold_at_most_their_share() {
    // Our four links are within our reserved share (6 - 2).
    let cfg = LinkConfig { max_links: 6, max_by_peers: 2, max_answering: 2, ..LinkConfig::default() };
    let mut a = linked(1, 99, cfg.clone());
    // Three links of our own, old and unprotected.
    for p in 2..=4 {
        a.transmit(ms(0), did(p), vec![1]);
    }
    let ours: Vec<ConnId> = a.conns.iter().filter(|c| c.phase != Phase::Open).map(|c| c.id).collect();
    for c in ours {
        a.handle_open(ms(0), c);
    }
    drain(&mut a);
    // A hundred strangers offer, over a minute, and complete every handshake they can.
    let mut t = 10_000;
    for s in 1000..1100u64 {
        t += 600;
        a.handle_signal(ms(t), did(s), LinkMsg::Offer { id: s, sdp: "x".into() });
        for o in drain(&mut a) {
            if let LinkOutput::Create { conn, .. } = o {
                if s % 2 == 0 {
                    a.handle_open(ms(t), conn); // half finish: open links held by strangers
                }
            }
            if let LinkOutput::Down { peer, .. } = o {
                assert!(peer.to_bytes()[12..] >= 1000u64.to_be_bytes()[..], "a stranger's offer closed our link to {peer:?}");
            }
        }
        // Closing links (draining after an eviction) are bounded apart.
        let by_peers = a.conns.iter().filter(|c| c.by_peer && c.phase != Phase::Closing).count();
        let answering = a.conns.iter().filter(|c| c.by_peer && matches!(c.phase, Phase::Offering | Phase::Answering)).count();
        assert!(
            a.len() <= cfg.max_links && by_peers <= cfg.max_by_peers && answering <= cfg.max_answering && a.closing() <= cfg.max_closing,
            "{} {by_peers} {answering}",
            a.len()
        );
    }
    assert!((2..=4).all(|p| a.is_open(did(p))) && a.is_open(did(99)), "our links all stay");
    // Our own next link still starts (a stranger's old link makes room).
    assert!(a.transmit(ms(t + 6_000), did(5), vec![1]));
    // An unfinished handshake that had its time gives way to a new offer; a young one not.
    let mut b = linked(1, 99, cfg);
    for s in [1000, 1001] {
        b.handle_signal(ms(0), did(s), LinkMsg::Offer { id: s, sdp: "x".into() });
    }
    drain(&mut b);
    b.handle_signal(ms(1_999), did(1002), LinkMsg::Offer { id: 1, sdp: "x".into() });
    assert!(drain(&mut b).is_empty(), "both answering slots young: refused");
    b.handle_signal(ms(2_000), did(1002), LinkMsg::Offer { id: 1, sdp: "x".into() });
    let out = drain(&mut b);
    assert!(is_down(&out, did(1000), false), "{out:?}");
    assert!(out.iter().any(|o| matches!(o, LinkOutput::Create { answer_to: Some(_), .. })), "{out:?}");
    // One stranger cannot churn its own slot: a new offer within answer_hold is ignored.
    b.handle_signal(ms(2_100), did(1002), LinkMsg::Offer { id: 2, sdp: "y".into() });
    assert!(drain(&mut b).is_empty());
}

#[test]
fn answers_and_candidates_must_name_the_negotiation_and_come_from_the_peer() {
    let cfg = LinkConfig { max_early: 3, ..LinkConfig::default() };
    let mut a = linked(1, 99, cfg);
    a.transmit(ms(0), did(2), vec![1]);
    let conn = match drain(&mut a)[..] {
        [LinkOutput::Create { conn, .. }] => conn,
        ref o => panic!("{o:?}"),
    };
    a.handle_local_description(ms(0), conn, "sdp".into());
    let id = match drain(&mut a).pop() {
        Some(LinkOutput::Signal { msg, .. }) => msg.negotiation(),
        o => panic!("{o:?}"),
    };
    // did(3) holds a link of its own: still not its negotiation to answer.
    let c3 = a.answer_manual(ms(0), did(3), "o".into()).unwrap();
    a.handle_open(ms(0), c3);
    drain(&mut a);
    a.handle_signal(ms(1), did(3), LinkMsg::Answer { id, sdp: "forged".into() });
    a.handle_signal(ms(1), did(2), LinkMsg::Answer { id: id + 1, sdp: "stale".into() });
    a.handle_signal(ms(1), did(3), LinkMsg::Candidate { id, candidate: cand(1) });
    assert!(drain(&mut a).is_empty(), "from another node, or another negotiation");
    // Early candidates are held up to max_early, then added once the answer is set.
    for n in 0..10 {
        a.handle_signal(ms(1), did(2), LinkMsg::Candidate { id, candidate: cand(n) });
    }
    assert!(drain(&mut a).is_empty());
    a.handle_signal(ms(2), did(2), LinkMsg::Answer { id, sdp: "answer".into() });
    let out = drain(&mut a);
    assert!(matches!(out[0], LinkOutput::SetAnswer { .. }));
    assert_eq!(out.iter().filter(|o| matches!(o, LinkOutput::AddCandidate { .. })).count(), 3, "{out:?}");
    a.handle_signal(ms(3), did(2), LinkMsg::Answer { id, sdp: "again".into() });
    assert!(drain(&mut a).is_empty(), "one answer per offer");
}

#[test]
fn an_unreachable_peer_s_link_closes_only_if_silent_and_an_undeliverable_offer_ends_its_link() {
    let mut a = linked(1, 99, LinkConfig::default());
    let conn = a.by_peer(did(99)).unwrap().id;
    assert_eq!(a.handle_frame(ms(1_000), conn, &[1]), Some(did(99)));
    a.handle_unreachable(ms(3_999), did(99));
    assert!(drain(&mut a).is_empty(), "a frame 2,999 ms ago: congested, not dead");
    a.handle_unreachable(ms(4_000), did(99));
    let out = drain(&mut a);
    assert!(
        matches!(&out[..], [LinkOutput::Close { reason: CloseReason::Silent, .. }, LinkOutput::Down { was_open: true, .. }]),
        "{out:?}"
    );

    let mut a = linked(1, 99, LinkConfig::default());
    a.transmit(ms(0), did(2), vec![1]);
    drain(&mut a);
    a.handle_unreachable(ms(9_000), did(2));
    assert!(drain(&mut a).is_empty(), "an opening link waits for its own deadline");
    let conn = a.by_peer(did(2)).unwrap().id;
    a.handle_local_description(ms(0), conn, "sdp".into());
    let id = a.negotiation_of(conn).unwrap();
    drain(&mut a);
    a.handle_signal_undeliverable(did(2), id + 1);
    assert!(drain(&mut a).is_empty(), "a lost signal of another negotiation");
    a.handle_signal_undeliverable(did(2), id);
    assert!(matches!(
        drain(&mut a)[..],
        [LinkOutput::Close { reason: CloseReason::SignalUndeliverable, .. }, LinkOutput::Down { was_open: false, .. }]
    ));
    a.handle_signal_undeliverable(did(99), 0);
    assert!(drain(&mut a).is_empty(), "an open link is not closed by a lost signal");
}

#[test]
fn a_manual_offer_is_answered_by_hand_and_the_first_link_joins() {
    let mut a = Links::new(did(1), LinkConfig::default(), 0);
    let conn = a.manual_offer(ms(0), Duration::from_millis(600_000)).unwrap();
    assert!(matches!(drain(&mut a)[..], [LinkOutput::Create { answer_to: None, .. }]));
    a.handle_local_description(ms(0), conn, "sdp with candidates".into());
    assert!(drain(&mut a).is_empty(), "the driver carries a manual offer");
    let id = a.negotiation_of(conn).unwrap();
    assert_eq!(a.accept_manual_answer(ms(1), id + 1, did(2), "answer".into()), None, "answer to an offer not held");
    assert_eq!(a.accept_manual_answer(ms(1), id, did(2), "answer".into()), Some(conn));
    assert!(matches!(drain(&mut a)[..], [LinkOutput::SetAnswer { .. }]));
    assert_eq!(a.accept_manual_answer(ms(1), id, did(3), "again".into()), None, "taken once");
    a.handle_open(ms(5), conn);
    assert_eq!(drain(&mut a), vec![LinkOutput::Up { peer: did(2) }, LinkOutput::Join { via: did(2) }]);
    a.handle_closed(ms(9), conn);
    assert!(matches!(&drain(&mut a)[..], [LinkOutput::Down { peer, was_open: true, reason: CloseReason::Lost }] if *peer == did(2)));
    assert!(a.is_empty());
}

#[test]
fn edge_cases_duplicate_open_manual_candidates_join_only_alone_credit_for_dropped_bytes_late_glare_copy() {
    let routed = vec![crate::wire::ROUTED_TAG, 1, 2];
    // Dropped routed bytes give their credit back (no link to carry an offer).
    let mut l = Links::new(did(1), LinkConfig::default(), 0);
    assert!(!l.transmit(ms(0), did(2), routed.clone()));
    assert_eq!(drain(&mut l), vec![LinkOutput::Credit { peer: did(2), bytes: 3 }]);
    // A manual link's late candidates never go through the ring; a second open is ignored;
    // a node with a ring already does not join through it.
    l.protect(Some(did(7)), None);
    let conn = l.manual_offer(ms(0), Duration::from_millis(60_000)).unwrap();
    l.handle_local_description(ms(0), conn, "sdp".into());
    let id = l.negotiation_of(conn).unwrap();
    l.accept_manual_answer(ms(1), id, did(2), "answer".into()).unwrap();
    drain(&mut l);
    l.handle_local_candidate(ms(2), conn, cand(1));
    assert!(drain(&mut l).is_empty(), "a manual link's candidate");
    l.handle_open(ms(3), conn);
    assert_eq!(drain(&mut l), vec![LinkOutput::Up { peer: did(2) }], "no Join: the node has a successor");
    l.handle_open(ms(4), conn);
    assert!(drain(&mut l).is_empty(), "a second open");

    // Glare: the smaller DID answers the larger's offer; a late copy of its own losing
    // offer reaching the larger one afterwards is ignored (the link stays).
    let (mut small, mut large) = (linked(1, 99, LinkConfig::default()), linked(2, 99, LinkConfig::default()));
    let offer = |l: &mut Links, to: Did| {
        l.transmit(ms(0), to, routed.clone());
        let conn = match drain(l)[..] {
            [LinkOutput::Create { conn, .. }] => conn,
            ref o => panic!("{o:?}"),
        };
        l.handle_local_description(ms(0), conn, "sdp".into());
        match drain(l).pop() {
            Some(LinkOutput::Signal { msg, .. }) => (conn, msg),
            o => panic!("{o:?}"),
        }
    };
    let ((_, losing), (large_conn, winning)) = (offer(&mut small, did(2)), offer(&mut large, did(1)));
    large.handle_signal(ms(1), did(1), losing.clone());
    small.handle_signal(ms(1), did(2), winning);
    let out = drain(&mut small);
    let small_conn = out.iter().find_map(|o| if let LinkOutput::Create { conn, .. } = o { Some(*conn) } else { None }).unwrap();
    small.handle_local_description(ms(2), small_conn, "answer".into());
    let answer = match drain(&mut small).pop() {
        Some(LinkOutput::Signal { msg, .. }) => msg,
        o => panic!("{o:?}"),
    };
    large.handle_signal(ms(3), did(1), answer);
    drain(&mut large);
    large.handle_open(ms(4), large_conn);
    small.handle_open(ms(4), small_conn);
    drain(&mut large);
    // The bytes that waited for the smaller DID's losing offer go over the winning link.
    let out = drain(&mut small);
    assert!(out.contains(&LinkOutput::Send { conn: small_conn, bytes: routed.clone() }), "{out:?}");
    large.handle_signal(ms(10_000), did(1), losing);
    assert!(drain(&mut large).is_empty(), "a late copy of the refused offer");
    assert!(large.is_open(did(1)) && small.is_open(did(2)));
}

#[test]
fn an_evicted_link_drains_the_peer_s_frames_in_flight_then_closes() {
    let cfg = LinkConfig { max_links: 2, max_closing: 1, ..LinkConfig::default() };
    let mut a = linked(1, 99, cfg.clone());
    let c3 = a.answer_manual(ms(0), did(3), "o".into()).unwrap();
    a.handle_open(ms(0), c3);
    a.protect(Some(did(99)), None);
    drain(&mut a);
    // Room for a link to 4: the link to 3 goes closing, not closed: it says CLOSING,
    // reports 3 down, and no longer counts against the cap.
    assert!(a.transmit(ms(6_000), did(4), vec![1]));
    let out = drain(&mut a);
    assert!(out.contains(&LinkOutput::Send { conn: c3, bytes: vec![CLOSING] }), "{out:?}");
    assert!(is_down(&out, did(3), true), "{out:?}");
    assert!(!out.iter().any(|o| matches!(o, LinkOutput::Close { conn, .. } if *conn == c3)), "{out:?}");
    assert_eq!((a.len(), a.closing()), (2, 1));
    // What 3 sent before it read CLOSING still reaches the node; nothing goes to 3, and
    // no new link to it opens while it drains.
    // (Routed data, not ring maintenance: the peer is down for the ring.)
    assert_eq!(a.handle_frame(ms(6_010), c3, &[crate::wire::ROUTED_TAG, 7]), Some(did(3)));
    assert_eq!(a.handle_frame(ms(6_010), c3, &[crate::chord::message::WIRE_VERSION, 0]), None);
    assert!(!a.transmit(ms(6_010), did(3), vec![crate::wire::ROUTED_TAG, 1]));
    assert_eq!(drain(&mut a), vec![LinkOutput::Credit { peer: did(3), bytes: 2 }]);
    // 3 closes its end: forgotten, no second Down.
    a.handle_closed(ms(6_020), c3);
    assert_eq!((a.len(), a.closing()), (2, 0));
    assert!(drain(&mut a).is_empty());

    // The peer's side: CLOSING closes its end at once, reported down.
    let mut b = linked(3, 1, cfg.clone());
    let conn = b.by_peer(did(1)).unwrap().id;
    assert_eq!(b.handle_frame(ms(10), conn, &[CLOSING]), None);
    let out = drain(&mut b);
    assert!(out.contains(&LinkOutput::Close { conn, reason: CloseReason::PeerClosed }), "{out:?}");
    assert!(is_down(&out, did(1), true), "{out:?}");

    // A closing link the peer never closes goes after close_linger; when max_closing
    // are draining, the oldest closes at once to let another drain.
    let mut a = linked(1, 99, cfg);
    a.protect(Some(did(99)), None);
    let c5 = a.answer_manual(ms(0), did(5), "o".into()).unwrap();
    a.handle_open(ms(0), c5);
    a.close(ms(100), did(5));
    assert_eq!(a.poll_timeout(), Some(ms(2_100)));
    drain(&mut a);
    let c6 = a.answer_manual(ms(200), did(6), "o".into()).unwrap();
    a.handle_open(ms(200), c6);
    a.close(ms(300), did(6));
    let out = drain(&mut a);
    assert!(out.contains(&LinkOutput::Close { conn: c5, reason: CloseReason::Drained }), "{out:?}");
    a.handle_timeout(ms(2_300));
    assert_eq!(drain(&mut a), vec![LinkOutput::Close { conn: c6, reason: CloseReason::Drained }]);
    assert_eq!(a.closing(), 0);
}

#[test]
fn unanswered_manual_offers_are_few_and_give_way_to_the_ring() {
    let cfg = LinkConfig { max_links: 6, ..LinkConfig::default() };
    let mut a = Links::new(did(1), cfg, 1);
    let long = Duration::from_millis(600_000);
    let offers: Vec<ConnId> = (0..MAX_MANUAL_OFFERS as u64).map(|i| a.manual_offer(ms(i), long).unwrap()).collect();
    drain(&mut a);
    // A fifth replaces the oldest unanswered one: never more than MAX_MANUAL_OFFERS.
    assert!(a.manual_offer(ms(10), long).is_some());
    let out = drain(&mut a);
    assert!(out.contains(&LinkOutput::Close { conn: offers[0], reason: CloseReason::Replaced }), "{out:?}");
    assert_eq!(a.len(), MAX_MANUAL_OFFERS);
    // The rest of the cap fills with open links.
    for p in [7, 8] {
        let c = a.answer_manual(ms(20), did(p), "o".into()).unwrap();
        a.handle_open(ms(20), c);
    }
    drain(&mut a);
    assert_eq!(a.len(), 6);
    // Once older than grace, an unanswered manual offer gives way to a link that is
    // needed, before any open link (7 and 8, as old, stay).
    assert!(a.answer_manual(ms(6_000), did(9), "o".into()).is_some());
    let out = drain(&mut a);
    assert!(out.contains(&LinkOutput::Close { conn: offers[1], reason: CloseReason::Evicted }), "{out:?}");
    assert!(a.is_open(did(7)) && a.is_open(did(8)) && a.len() == 6);
}

#[test]
fn strangers_offers_take_our_links_only_beyond_our_reserved_share() {
    // Four links of our own, old; a reserve of 2 (4 - 2): the ring's true predecessor,
    // arriving as a stranger's offer, is not locked out by a cap full of our links.
    let cfg = LinkConfig { max_links: 4, max_by_peers: 2, ..LinkConfig::default() };
    let mut a = Links::new(did(1), cfg, 1);
    for p in 2..=5 {
        let c = a.answer_manual(ms(0), did(p), "o".into()).unwrap();
        a.handle_open(ms(p), c);
    }
    drain(&mut a);
    let mut taken = Vec::new();
    for s in [100, 101, 102] {
        a.handle_signal(ms(10_000), did(s), LinkMsg::Offer { id: s, sdp: "x".into() });
        for o in drain(&mut a) {
            if let LinkOutput::Down { peer, .. } = o {
                taken.push(peer);
            }
        }
    }
    // Two of ours went (least recently used first), the third stranger is refused: we
    // keep our reserved two.
    assert_eq!(taken, vec![did(2), did(3)]);
    assert!(a.is_open(did(4)) && a.is_open(did(5)) && !a.holds(did(102)));
}

#[test]
fn a_failed_join_lets_go_of_a_silent_bootstrap_but_not_of_a_live_one_or_an_unanswered_manual_offer() {
    let mut a = Links::new(did(1), LinkConfig::default(), 0);
    let conn = a.manual_offer(ms(0), Duration::from_millis(600_000)).unwrap();
    a.handle_local_description(ms(0), conn, "sdp".into());
    let id = a.negotiation_of(conn).unwrap();
    a.accept_manual_answer(ms(1), id, did(2), "answer".into()).unwrap();
    a.handle_open(ms(5), conn);
    let spare = a.manual_offer(ms(6), Duration::from_millis(600_000)).unwrap();
    drain(&mut a);
    assert!(!a.give_up_join(ms(1_000), did(2)), "heard from within the silence: the join goes on");
    assert!(drain(&mut a).is_empty());
    assert!(a.give_up_join(ms(30_000), did(2)), "silent for 30 s");
    let out = drain(&mut a);
    assert!(is_down(&out, did(2), true), "{out:?}");
    assert!(out.iter().any(|o| matches!(o, LinkOutput::Down { reason: CloseReason::JoinFailed, .. })), "{out:?}");
    assert!(a.negotiation_of(spare).is_some(), "the unanswered manual offer stays");
    assert!(a.give_up_join(ms(30_001), did(2)), "no link at all: nothing to join through");
    assert!(drain(&mut a).is_empty(), "nothing closed twice");
}
