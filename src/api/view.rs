//! What a driver shows its application, as plain values: events (`{type, …}`), the
//! node's `info`, stored records. The browser turns a [`Value`] into a JS object, the
//! native node into JSON.

use crate::chord;
use crate::link::CloseReason;
use crate::node::{Event, LinkEvent, Node};
use crate::store::{Record, RecordKind};
use crate::Did;

/// A JSON-like value (bytes kept apart: a `Uint8Array` in JS, hex in JSON).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Num(f64),
    /// A 64-bit id (a `bigint` in JS).
    Big(u64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Obj(Vec<(&'static str, Value)>),
}

impl Value {
    /// An application event: `{type: kind, …fields}`.
    pub fn event(kind: &str, mut fields: Vec<(&'static str, Value)>) -> Value {
        fields.insert(0, ("type", Value::Str(kind.to_string())));
        Value::Obj(fields)
    }
    pub fn did(d: Did) -> Value {
        Value::Str(d.to_checksum())
    }
    fn opt_did(d: Option<Did>) -> Value {
        d.map_or(Value::Null, Value::did)
    }
    fn dids(v: impl Iterator<Item = Did>) -> Value {
        Value::List(v.map(Value::did).collect())
    }
    /// A field of an object, if it is one.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Obj(fields) => fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Num(n as f64)
    }
}

impl From<usize> for Value {
    fn from(n: usize) -> Value {
        Value::Num(n as f64)
    }
}

/// Why a link went, for people.
pub fn reason_text(r: CloseReason) -> &'static str {
    match r {
        CloseReason::TimedOut => "connection timed out",
        CloseReason::Evicted => "connection limit: least recently used",
        CloseReason::Replaced => "replaced by a newer connection",
        CloseReason::Silent => "peer unreachable",
        CloseReason::SignalUndeliverable => "signal undeliverable",
        CloseReason::Closed => "disconnected",
        CloseReason::PeerClosed => "closed by the peer",
        CloseReason::Drained => "closed",
        CloseReason::Lost => "connection lost",
        CloseReason::JoinFailed => "the ring could not be joined through it",
    }
}

/// The application's view of a node event (`None`: nothing for the application; store
/// outcomes settle their requests instead).
pub fn event(node: &Node, e: &Event) -> Option<Value> {
    Some(match e {
        Event::Message(d) => Value::event(
            "message",
            vec![("from", Value::did(d.from)), ("data", Value::Bytes(d.body.clone())), ("hops", u64::from(d.hops).into())],
        ),
        Event::Undelivered(u) => Value::event(
            "undelivered",
            vec![("tx", Value::Big(u.tx)), ("to", Value::did(u.dest)), ("reason", Value::Str(format!("{:?}", u.reason)))],
        ),
        Event::Link(LinkEvent::Up { peer }) => Value::event("peerUp", vec![("did", Value::did(*peer))]),
        Event::Link(LinkEvent::Down { peer, was_open: true, reason }) => {
            Value::event("peerDown", vec![("did", Value::did(*peer)), ("reason", Value::Str(reason_text(*reason).into()))])
        }
        Event::Ring(chord::Event::Joined { .. }) => Value::event("joined", vec![]),
        Event::Ring(chord::Event::JoinFailed { error, .. }) => {
            Value::event("joinFailed", vec![("reason", Value::Str(format!("{error:?}")))])
        }
        Event::Ring(chord::Event::SuccessorChanged { .. } | chord::Event::PredecessorChanged { .. }) => {
            let r = node.ring();
            Value::event(
                "ringChanged",
                vec![("successor", Value::opt_did(r.successor())), ("predecessor", Value::opt_did(r.predecessor()))],
            )
        }
        _ => return None,
    })
}

/// `{sign, verify, delegation, pair, seal, open, seal16kMBps}` (operations per second).
pub fn crypto(c: &crate::bench::CryptoOps) -> Value {
    let n = Value::Num;
    Value::Obj(vec![
        ("sign", n(c.sign)),
        ("verify", n(c.verify)),
        ("delegation", n(c.delegation)),
        ("pair", n(c.pair)),
        ("seal", n(c.seal)),
        ("open", n(c.open)),
        ("seal16kMBps", n(c.seal_16k_mb_s)),
    ])
}

/// `{writer, value, version, expiresAt, kind}`.
pub fn record(r: &Record) -> Value {
    Value::Obj(vec![
        ("writer", Value::did(r.writer)),
        ("value", Value::Bytes(r.value.clone())),
        ("version", r.version.into()),
        ("expiresAt", r.expires_at.into()),
        ("kind", Value::Str(if r.kind == RecordKind::Set { "set" } else { "value" }.into())),
    ])
}

/// `{did, joined, successor, predecessor, successors, fingers, connections, pending,
/// stats}`; `stats` ends with the driver's own counters (`extra`).
pub fn info(node: &Node, extra: Vec<(&'static str, Value)>) -> Value {
    let r = node.ring();
    let w = node.wire().stats();
    let (open, held, (waiting, outstanding), (trickled, received)) = match node.links() {
        Some(l) => (l.open_peers().count(), l.len(), l.backlog(), l.candidates()),
        None => (0, 0, (0, 0), (0, 0)),
    };
    let mut stats: Vec<(&'static str, Value)> = vec![
        ("messagesSent", w.messages_sent.into()),
        ("messagesDelivered", w.messages_delivered.into()),
        ("framesRelayed", w.frames_relayed.into()),
        ("rejected", w.rejected_total().into()),
        ("ringMalformed", r.stats().malformed.into()),
        ("queuedBytes", node.wire().backlog().0.into()),
        ("outboxMessages", node.wire().backlog().1.into()),
        ("waitingBytes", waiting.into()),
        ("outstandingBytes", outstanding.into()),
        ("candidatesTrickled", trickled.into()),
        ("candidatesReceived", received.into()),
        ("signalsInFlight", node.signals_in_flight().into()),
    ];
    stats.extend(extra);
    Value::Obj(vec![
        ("did", Value::did(node.did())),
        ("joined", Value::Bool(r.is_joined() && r.successor().is_some())),
        ("successor", Value::opt_did(r.successor())),
        ("predecessor", Value::opt_did(r.predecessor())),
        ("successors", Value::dids(r.table().successors().iter().copied())),
        ("fingers", Value::dids(r.table().finger_nodes())),
        ("connections", open.into()),
        ("pending", held.saturating_sub(open).into()),
        ("stats", Value::Obj(stats)),
    ])
}
