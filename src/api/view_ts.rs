//! The TypeScript types of the views in [`super::view`], appended to the generated
//! `.d.ts` (the tests below check that every field a view builds is declared here).

/// `ProviderInfo`, `StoredRecord`, the event map and `CryptoOps`.
pub const VIEW_TS: &str = r#"
// @rings-views-begin (scripts/build-pkg.sh copies what follows into views.ts)
/** What `Provider.info()` returns. */
export interface ProviderInfo {
  did: string;
  /** Part of a ring with at least one other node. */
  joined: boolean;
  successor: string | null;
  predecessor: string | null;
  successors: string[];
  fingers: string[];
  connections: number;
  pending: number;
  stats: ProviderStats;
}

export interface ProviderStats {
  messagesSent: number;
  messagesDelivered: number;
  framesRelayed: number;
  rejected: number;
  ringMalformed: number;
  /** Frame bytes queued beyond the links' flow-control windows. */
  queuedBytes: number;
  /** Messages waiting for their first hop to drain before they are sealed. */
  outboxMessages: number;
  /** Bytes waiting for connections still opening. */
  waitingBytes: number;
  /** Bytes handed to data channels and not yet credited back as sent. */
  outstandingBytes: number;
  /** ICE candidates gathered after an offer or answer left, sent through the ring. */
  candidatesTrickled: number;
  /** Such candidates received for links being opened. */
  candidatesReceived: number;
  /** Offers, answers and candidates sent through the ring and not yet settled. */
  signalsInFlight: number;
  /** Sum of the open data channels' `bufferedAmount`. */
  bufferedBytes: number;
}

/** A record read from the ring, checked against its writer's signature. */
export interface StoredRecord {
  /** The account that wrote it. */
  writer: string;
  value: Uint8Array;
  /** Higher versions replace lower ones (milliseconds of the write, or later). */
  version: number;
  /** Unix milliseconds after which the record is gone. */
  expiresAt: number;
  kind: "value" | "set";
}

export interface MessageDetail {
  from: string;
  data: Uint8Array;
  hops: number;
}

/** The events a Provider dispatches (as `CustomEvent`s with these `detail`s). */
export interface ProviderEventMap {
  peerUp: { did: string };
  peerDown: { did: string; reason: string };
  joined: Record<string, never>;
  joinFailed: { reason: string };
  ringChanged: { successor: string | null; predecessor: string | null };
  /** A message for no Client namespace (raw `Provider.send`). */
  message: MessageDetail;
  undelivered: { tx: bigint; to: string; reason: string };
}

/** An event as the wasm hands it over: `{type, …detail}`. */
export type ProviderEvent = { [K in keyof ProviderEventMap]: { type: K } & ProviderEventMap[K] }[keyof ProviderEventMap];

/** Crypto operations per second (`cryptoBench`). */
export interface CryptoOps {
  sign: number;
  verify: number;
  delegation: number;
  pair: number;
  seal: number;
  open: number;
  seal16kMBps: number;
}
// @rings-views-end
"#;

#[cfg(all(test, not(target_arch = "wasm32")))] // a node from the simulator's sessions
mod tests {
    use super::super::view::{self, Value};
    use super::VIEW_TS;
    use crate::chord;
    use crate::link::CloseReason;
    use crate::node::{Event, LinkEvent};
    use crate::store::{Record, RecordKind};
    use crate::wire::{Delivery, RouteError, Undelivered};
    use crate::Did;

    /// The body of `interface <name> {…}` or of the event map's entry `<name>: {…}`.
    fn block(name: &str) -> &'static str {
        let start = VIEW_TS.find(&format!("interface {name} {{")).or_else(|| VIEW_TS.find(&format!("  {name}: ")));
        let start = start.unwrap_or_else(|| panic!("{name} declared"));
        let rest = &VIEW_TS[start..];
        let line = &rest[..rest.find('\n').expect("a line")];
        if !line.contains('{') {
            // `message: MessageDetail;`: the named interface
            return block(line.trim_end_matches(';').rsplit(' ').next().expect("a type name"));
        }
        let open = rest.find('{').expect("a block");
        let close = rest[open..].find('}').expect("closed") + open;
        &rest[open..=close]
    }

    fn keys(v: &Value) -> Vec<&'static str> {
        match v {
            Value::Obj(fields) => fields.iter().map(|(k, _)| *k).collect(),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn declared(v: &Value, body: &str, skip: &[&str]) {
        for k in keys(v) {
            if !skip.contains(&k) {
                assert!(body.contains(&format!(" {k}:")), "{k} declared in {body}");
            }
        }
    }

    #[test]
    fn every_field_of_info_and_records_is_declared() {
        let node = test_node();
        let info = view::info(&node, vec![("bufferedBytes", Value::Num(0.0))]);
        declared(&info, block("ProviderInfo"), &[]);
        declared(info.get("stats").expect("stats"), block("ProviderStats"), &[]);
        let stats_declared = block("ProviderStats").matches(": number;").count();
        assert_eq!(stats_declared, keys(info.get("stats").expect("stats")).len(), "no stale stats field");
        declared(&view::record(&node_record()), block("StoredRecord"), &[]);
        let c = crate::bench::CryptoOps { sign: 1.0, verify: 1.0, delegation: 1.0, pair: 1.0, seal: 1.0, open: 1.0, seal_16k_mb_s: 1.0 };
        declared(&view::crypto(&c), block("CryptoOps"), &[]);
    }

    fn test_node() -> crate::node::Node {
        let mut rng = <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(2);
        let s = crate::sim::pair::session(&mut rng, 1, crate::sim::pair::T0, crate::sim::pair::DAY);
        let cfg = super::super::data_channel_config(1, 8, 5_000, 1 << 20);
        crate::node::Node::new(crate::node::Identity::Session(s), cfg, [2; 32], crate::time::Instant(crate::sim::pair::T0)).expect("valid")
    }

    fn node_record() -> Record {
        let mut rng = <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(1);
        let s = crate::sim::pair::session(&mut rng, 1, crate::sim::pair::T0, crate::sim::pair::DAY);
        Record::sign(&s, Did::ZERO, RecordKind::Value, 1, 2, vec![])
    }

    #[test]
    fn every_event_is_in_the_event_map_with_its_fields() {
        let node = test_node();
        let d = Did::from_name(b"peer");
        let events = [
            Event::Message(Delivery { from: d, tx: 1, body: vec![1], hops: 1 }),
            Event::Undelivered(Undelivered { tx: 1, dest: d, reason: RouteError::NoRoute, reporter: d }),
            Event::Link(LinkEvent::Up { peer: d }),
            Event::Link(LinkEvent::Down { peer: d, was_open: true, reason: CloseReason::Lost }),
            Event::Ring(chord::Event::SuccessorChanged { successor: Some(d) }),
        ];
        for e in &events {
            let v = view::event(&node, e).expect("an application event");
            let Some(Value::Str(kind)) = v.get("type") else { panic!("{v:?}") };
            declared(&v, block(kind), &["type"]);
        }
        assert!(view::event(&node, &Event::Link(LinkEvent::Down { peer: d, was_open: false, reason: CloseReason::Lost })).is_none());
    }
}
