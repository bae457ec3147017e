//! The receiving side of the wire: a message for this node, from its first frame to
//! its delivery (session proof, authentication, reassembly, replay memory, reports).

use super::*;

impl Wire {
    /// Resolves the origin's session proof to a verified session key.
    fn prove(&mut self, now: Instant, origin: Did, proof: &SessionProof, msg_expires: u64) -> Result<Proven, RejectReason> {
        match proof {
            SessionProof::Known(fp) => {
                let (did, s) = self.sessions.by_fingerprint(*fp, self.wall(now).as_millis()).ok_or(RejectReason::UnknownSession)?;
                if did != origin {
                    return Err(RejectReason::SessionMismatch);
                }
                Ok(Proven { key: s.key, fingerprint: *fp, full: false, expires_at: s.expires_at, msg_expires, hops: 0, pair: Some(s.pair) })
            }
            SessionProof::Full(d) => {
                if d.account != origin {
                    return Err(RejectReason::SessionMismatch);
                }
                let fingerprint = d.fingerprint();
                // A delegation verified before (here or by the store) is not verified
                // again; its network and validity still are.
                let before = self.vouched.verified();
                let key = self.vouched.verify(d, self.cfg.network, self.wall(now), self.cfg.skew).map_err(delegation_fault);
                self.stats.delegations_verified += self.vouched.verified() - before;
                let key = key?;
                Ok(Proven { key, fingerprint, full: true, expires_at: d.expires_at, msg_expires, hops: 0, pair: None })
            }
        }
    }

    pub(super) fn receive(&mut self, now: Instant, table: &RoutingTable, frame: Frame) -> Result<(), RejectReason> {
        let (origin, tx, via) = (frame.origin, frame.tx, frame.handed_by());
        let Part::Head(h) = frame.part else {
            return self.receive_more(now, table, frame);
        };
        if self.reasm.contains(origin, tx) {
            return Err(RejectReason::DuplicateFrame);
        }
        let expires_at = h.issued_at.saturating_add(h.ttl as u64);
        if !self.replay.is_fresh(origin, tx, expires_at) {
            return Err(RejectReason::Replay);
        }
        if self.session.is_none() {
            return Err(RejectReason::NoSession);
        }
        let mut proven = match self.prove(now, origin, &h.session, expires_at) {
            Ok(p) => p,
            Err(RejectReason::UnknownSession) => {
                if h.kind != Kind::Error {
                    self.report(now, table, origin, tx, self.me, RouteError::UnknownSession);
                }
                return Err(RejectReason::UnknownSession);
            }
            Err(e) => return Err(e),
        };
        proven.hops = (frame.path.len() + 1).min(u8::MAX as usize) as u8;
        // Sessions open with signed hellos carrying the delegation; data is sealed under
        // the pair's keys; nothing else is accepted.
        let fits = match (h.kind, h.auth) {
            (Kind::Hello | Kind::HelloReply, Auth::Signature(_)) => proven.full,
            (Kind::Error, Auth::Signature(_)) => true,
            (Kind::Data, Auth::Pair { .. }) => proven.pair.is_some(),
            _ => false,
        };
        if !fits {
            return Err(RejectReason::UnexpectedKind);
        }
        let signing = Signing::start(origin, self.me, tx, frame.hop_limit, &h, proven.fingerprint);
        let mut check = match (h.auth, proven.pair.take()) {
            (Auth::Pair { to, nonce, head }, Some(keys)) => {
                if self.session.as_ref().is_some_and(|s| s.fingerprint() != to) {
                    // Sealed for a session of this node's account it does not hold (an
                    // older one): the origin must open a new session.
                    self.report(now, table, origin, tx, self.me, RouteError::Undecryptable);
                    return Err(RejectReason::Undecryptable);
                }
                let aad = signing.finish();
                // Authentic from the first frame, before anything is held for the rest.
                if !keys.check_head(&nonce, &aad, &head) {
                    return Err(RejectReason::BadSignature);
                }
                Check::Sealed { keys, aad, nonce }
            }
            (Auth::Signature(signature), _) => Check::Signed { signature, signing },
            (Auth::Pair { .. }, None) => return Err(RejectReason::UnexpectedKind),
        };
        let body_len = h.body_len as usize;
        if frame.piece.len() > body_len
            || (h.frames == 1 && frame.piece.len() != body_len)
            || (h.frames > 1 && frame.piece.len() < MIN_PIECE)
        {
            return Err(RejectReason::Truncated);
        }
        if let Check::Signed { signing, .. } = &mut check {
            signing.body(&frame.piece);
        }
        if h.frames == 1 {
            let body = authenticate(check, &proven.key, frame.piece)?;
            return self.complete(now, table, origin, tx, h.kind, &proven, body);
        }
        let mut partial = Partial {
            kind: h.kind,
            key: proven.key,
            fingerprint: proven.fingerprint,
            full_proof: proven.full,
            check,
            expires_at: proven.expires_at,
            msg_expires: expires_at,
            hops: proven.hops,
            frames: h.frames,
            next_seq: 1,
            body_len,
            body: Vec::new(),
            last_progress: now,
            via,
            deadline: self.wall.mono(Instant(expires_at)) + self.cfg.reassembly_timeout,
        };
        if !partial.append(&frame.piece) {
            return Err(RejectReason::ReassemblyFull);
        }
        let budget =
            Budget { per_origin: self.cfg.reassembly_per_origin, per_link: self.cfg.reassembly_per_link, total: self.cfg.reassembly_total };
        if !self.reasm.start(origin, tx, partial, budget) {
            if h.kind != Kind::Error {
                self.report(now, table, origin, tx, self.me, RouteError::Busy);
            }
            return Err(RejectReason::ReassemblyFull);
        }
        Ok(())
    }

    fn receive_more(&mut self, now: Instant, table: &RoutingTable, frame: Frame) -> Result<(), RejectReason> {
        let (origin, tx) = (frame.origin, frame.tx);
        let Some(p) = self.reasm.get_mut(origin, tx) else {
            return Err(if self.replay.contains(origin, tx) { RejectReason::DuplicateFrame } else { RejectReason::UnknownMessage });
        };
        // Pieces follow the first frame's path; one from another link is somebody
        // else's (it does not cost the message anything).
        if frame.handed_by() != p.via {
            return Err(RejectReason::PathMismatch);
        }
        if frame.seq < p.next_seq {
            return Err(RejectReason::DuplicateFrame);
        }
        let last = frame.seq == p.frames.saturating_sub(1);
        let fault = if frame.seq > p.next_seq || frame.seq >= p.frames {
            Some(RejectReason::OutOfOrder)
        } else if p.body.len() + frame.piece.len() > p.body_len
            || (last && p.body.len() + frame.piece.len() != p.body_len)
            || frame.piece.is_empty()
            || (!last && frame.piece.len() < MIN_PIECE)
        {
            Some(RejectReason::Truncated)
        } else {
            None
        };
        if let Some(fault) = fault {
            // A gap or a wrong length cannot heal: give the message up now.
            if let Some(p) = self.give_up(origin, tx) {
                if p.kind != Kind::Error {
                    self.report(now, table, origin, tx, self.me, RouteError::Incomplete);
                }
            }
            return Err(fault);
        }
        if let Check::Signed { signing, .. } = &mut p.check {
            signing.body(&frame.piece);
        }
        if !p.append(&frame.piece) {
            self.give_up(origin, tx);
            self.report(now, table, origin, tx, self.me, RouteError::Busy);
            return Err(RejectReason::ReassemblyFull);
        }
        p.next_seq += 1;
        p.last_progress = now;
        if p.next_seq < p.frames {
            return Ok(());
        }
        let Some(p) = self.reasm.finish(origin, tx) else {
            return Ok(());
        };
        let body = authenticate(p.check, &p.key, p.body)?;
        let proven = Proven {
            key: p.key,
            fingerprint: p.fingerprint,
            full: p.full_proof,
            expires_at: p.expires_at,
            msg_expires: p.msg_expires,
            hops: p.hops,
            pair: None,
        };
        self.complete(now, table, origin, tx, p.kind, &proven, body)
    }

    /// A whole, authenticated message (its body opened).
    #[allow(clippy::too_many_arguments)]
    fn complete(
        &mut self,
        now: Instant,
        table: &RoutingTable,
        origin: Did,
        tx: u64,
        kind: Kind,
        proven: &Proven,
        body: Vec<u8>,
    ) -> Result<(), RejectReason> {
        // Entries and floors are message expiries (issue time + ttl), the unit
        // `is_fresh` compares; `expire` forgets them a skew after, when the expiry check
        // refuses the message anyway.
        if !self.replay.insert(origin, tx, proven.msg_expires) {
            return Err(RejectReason::ReplayFull);
        }
        self.stats.verified += 1;
        if proven.full && !self.sessions.holds(origin, proven.fingerprint) {
            if let Some(me) = &self.session {
                let pair = me.pair_keys(&proven.key, proven.fingerprint);
                self.stats.pairs_derived += 1;
                self.sessions.insert(origin, proven.fingerprint, proven.key, proven.expires_at, pair);
            }
        }
        match kind {
            Kind::Hello | Kind::HelloReply => {
                if kind == Kind::Hello {
                    // If no route back exists now, the origin's hello times out and it
                    // reports that; there is nobody else to tell.
                    let reply_tx = self.rng.next_u64();
                    let _ = self.emit(now, table, origin, reply_tx, Kind::HelloReply, Vec::new(), None);
                }
                // Either way both sides now hold each other's session (a crossing pair
                // of hellos included): release what waited for it.
                let waiting = self.waiting.remove(&origin);
                if let (Some(w), Some(peer)) = (waiting, self.sessions.get(origin, self.wall(now).as_millis())) {
                    for (tx, body) in w.messages {
                        self.send_data(now, table, origin, tx, &peer, body);
                    }
                }
                Ok(())
            }
            Kind::Data => {
                self.stats.messages_delivered += 1;
                self.out.push_back(WireOutput::Delivered(Delivery { from: origin, tx, body, hops: proven.hops }));
                Ok(())
            }
            Kind::Error => {
                let Ok(e) = postcard::from_bytes::<ErrorBody>(&body) else {
                    return Err(RejectReason::Malformed);
                };
                if matches!(e.reason, RouteError::UnknownSession | RouteError::Undecryptable) {
                    // It lost ours, or we hold an old one of its: open a new session next time.
                    self.sessions.remove(origin);
                }
                // A report on the latest hello fails what waits; on an earlier one (a
                // retry is out) it is nobody's business.
                match self.waiting.get(&e.dest).map(|w| w.hello_txs.iter().position(|&t| t == e.tx).map(|at| at + 1 == w.hello_txs.len())) {
                    Some(Some(true)) => self.fail_waiting(e.dest, e.reason, origin),
                    Some(Some(false)) => {}
                    _ => self.undelivered(e.tx, e.dest, e.reason, origin),
                }
                Ok(())
            }
        }
    }

    /// Tells the origin of `tx` why it failed (signed; never about an error message).
    /// Drops a partly received message and remembers its id until it expires, so the
    /// frames a relay kept cannot deliver it after its origin heard it failed.
    pub(super) fn give_up(&mut self, origin: Did, tx: u64) -> Option<Partial> {
        let p = self.reasm.finish(origin, tx)?;
        let _ = self.replay.insert(origin, tx, p.msg_expires);
        Some(p)
    }

    pub(super) fn report(&mut self, now: Instant, table: &RoutingTable, origin: Did, tx: u64, dest: Did, reason: RouteError) {
        if self.session.is_none() || origin == self.me {
            return;
        }
        let body = postcard::to_allocvec(&ErrorBody { tx, dest, reason }).unwrap_or_default();
        let err_tx = self.rng.next_u64();
        if self.emit(now, table, origin, err_tx, Kind::Error, body, None).is_ok() {
            self.stats.errors_reported += 1;
        }
    }
}

/// Checks a whole message's signature, or opens its sealed body; returns the body.
fn authenticate(check: Check, key: &k256::ecdsa::VerifyingKey, body: Vec<u8>) -> Result<Vec<u8>, RejectReason> {
    match check {
        Check::Signed { signature, signing } => {
            if signature.verify(key, &signing.finish()) {
                Ok(body)
            } else {
                Err(RejectReason::BadSignature)
            }
        }
        Check::Sealed { keys, aad, nonce } => keys.open(&nonce, &aad, body).map_err(|_| RejectReason::BadSignature),
    }
}

/// A delegation's fault as a reject reason.
fn delegation_fault(e: IdentityError) -> RejectReason {
    match e {
        IdentityError::Expired => RejectReason::DelegationExpired,
        IdentityError::WrongSigner | IdentityError::BadAccountSignature => RejectReason::DelegationSigner,
        IdentityError::WrongNetwork => RejectReason::WrongNetwork,
        _ => RejectReason::DelegationInvalid,
    }
}
