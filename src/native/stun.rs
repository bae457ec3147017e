//! Server-reflexive candidates: each new connection asks the configured STUN servers,
//! from each of its sockets, what address its packets come from (a bare binding
//! request), and waits a little for the answers before it describes itself, so an offer
//! or answer carried by hand or over HTTP holds them too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant as StdInstant};

/// How long a new connection waits for its STUN answers before it describes itself
/// with what it has.
pub const STUN_WAIT: Duration = Duration::from_millis(500);

const MAGIC: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const BINDING_REQUEST: [u8; 2] = [0x00, 0x01];
const BINDING_SUCCESS: [u8; 2] = [0x01, 0x01];
const MAPPED_ADDRESS: u16 = 0x0001;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// A connection's binding requests still out.
pub struct Gathering {
    pub until: StdInstant,
    /// (socket index, server, transaction)
    asked: Vec<(usize, SocketAddr, [u8; 12])>,
    /// The peer's offer to answer once gathered (`None`: ours to make).
    pub offer: Option<String>,
}

/// A binding request without attributes (RFC 8489 §6: what a public STUN server
/// answers; str0m's codec is for ICE checks, which carry credentials).
pub fn request(id: [u8; 12]) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[..2].copy_from_slice(&BINDING_REQUEST);
    b[4..8].copy_from_slice(&MAGIC);
    b[8..].copy_from_slice(&id);
    b
}

/// The address a binding success response to transaction `id` tells (XOR-MAPPED-ADDRESS,
/// else MAPPED-ADDRESS); `None` if `data` is not such a response (`Some(None)`: it is,
/// but tells no address this parser reads).
pub fn response(data: &[u8], id: &[u8; 12]) -> Option<Option<SocketAddr>> {
    let (head, body) = (data.get(..20)?, &data[20..]);
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    if head[4..8] != MAGIC || head[8..20] != id[..] || len != body.len() {
        return None;
    }
    if head[..2] != BINDING_SUCCESS {
        return Some(None); // an error response to our request
    }
    let (mut at, mut plain) = (0, None);
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let n = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let Some(value) = body.get(at + 4..at + 4 + n) else { break };
        match kind {
            XOR_MAPPED_ADDRESS => return Some(address(value, Some(id))),
            MAPPED_ADDRESS => plain = address(value, None),
            _ => {}
        }
        at += 4 + n.div_ceil(4) * 4; // attributes are padded to 4 bytes
    }
    Some(plain)
}

/// An address attribute's value (family, port, address), XORed with the magic cookie
/// and the transaction id if `xor` names it.
fn address(v: &[u8], xor: Option<&[u8; 12]>) -> Option<SocketAddr> {
    let mut key = [0u8; 16];
    if let Some(id) = xor {
        key[..4].copy_from_slice(&MAGIC);
        key[4..].copy_from_slice(id);
    }
    let port = u16::from_be_bytes([v.get(2)? ^ key[0], v.get(3)? ^ key[1]]);
    let ip = match (v.get(1)?, v.len()) {
        (1, 8) => IpAddr::V4(Ipv4Addr::from(std::array::from_fn::<u8, 4, _>(|i| v[4 + i] ^ key[i]))),
        (2, 20) => IpAddr::V6(Ipv6Addr::from(std::array::from_fn::<u8, 16, _>(|i| v[4 + i] ^ key[i]))),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

impl Gathering {
    /// Asks every server from every socket (`send(socket, server, bytes)`); `None` if no
    /// server is configured (nothing to wait for).
    pub fn start(now: StdInstant, sockets: usize, servers: &[SocketAddr], offer: Option<String>, mut send: impl FnMut(usize, SocketAddr, &[u8])) -> Option<Gathering> {
        if servers.is_empty() || sockets == 0 {
            return None;
        }
        let mut asked = Vec::new();
        for sock in 0..sockets {
            for server in servers {
                let mut id = [0u8; 12];
                if getrandom::getrandom(&mut id).is_ok() {
                    send(sock, *server, &request(id));
                    asked.push((sock, *server, id));
                }
            }
        }
        Some(Gathering { until: now + STUN_WAIT, asked, offer })
    }

    /// If `data` from `source` on socket `sock` answers one of our requests: the mapped
    /// address it tells (`Some(None)`: an answer without one, or a failure).
    pub fn answer(&mut self, sock: usize, source: SocketAddr, data: &[u8]) -> Option<Option<SocketAddr>> {
        let (at, mapped) = self.asked.iter().enumerate().find_map(|(i, (s, server, id))| (*s == sock && *server == source).then(|| response(data, id).map(|m| (i, m))).flatten())?;
        self.asked.remove(at);
        Some(mapped)
    }

    /// Every request answered, or the time is up.
    pub fn done(&self, now: StdInstant) -> bool {
        self.asked.is_empty() || now >= self.until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binding success response as a server builds it (RFC 8489 §14.2): XOR-MAPPED-ADDRESS,
    /// then SOFTWARE (padded).
    fn reply(id: &[u8; 12], mapped: SocketAddr) -> Vec<u8> {
        let mut attr = vec![0, 0x20, 0, 0, 0, if mapped.is_ipv4() { 1 } else { 2 }];
        let mut key = MAGIC.to_vec();
        key.extend_from_slice(id);
        attr.extend((mapped.port() ^ 0x2112).to_be_bytes());
        let ip = match mapped.ip() {
            IpAddr::V4(v) => v.octets().to_vec(),
            IpAddr::V6(v) => v.octets().to_vec(),
        };
        attr.extend(ip.iter().zip(&key).map(|(a, k)| a ^ k));
        let n = (attr.len() - 4) as u16;
        attr[2..4].copy_from_slice(&n.to_be_bytes());
        attr.extend([0x80, 0x22, 0, 5, b'r', b'i', b'n', b'g', b's', 0, 0, 0]);
        let mut out = vec![0x01, 0x01];
        out.extend((attr.len() as u16).to_be_bytes());
        out.extend(MAGIC);
        out.extend(id);
        out.extend(attr);
        out
    }

    #[test]
    fn a_request_is_a_bare_binding_request() {
        let r = request([7; 12]);
        assert_eq!(&r[..8], &[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]);
        assert_eq!(&r[8..], &[7; 12]);
    }

    #[test]
    fn responses_are_read_only_for_their_transaction_and_junk_never_panics() {
        let id = [3u8; 12];
        for mapped in ["203.0.113.7:40000", "[2001:db8::5]:1234"] {
            let mapped: SocketAddr = mapped.parse().unwrap();
            assert_eq!(response(&reply(&id, mapped), &id), Some(Some(mapped)));
            assert_eq!(response(&reply(&[4; 12], mapped), &id), None, "another transaction");
        }
        let good = reply(&id, "198.51.100.1:9".parse().unwrap());
        let mut error = good.clone();
        error[..2].copy_from_slice(&[0x01, 0x11]);
        assert_eq!(response(&error, &id), Some(None), "an error response");
        // Every truncation and every single-byte change: an answer or nothing, no panic.
        for n in 0..good.len() {
            assert_eq!(response(&good[..n], &id), None, "truncated to {n}");
        }
        for i in 0..good.len() {
            for x in [0u8, 1, 0x7f, 0xff] {
                let mut b = good.clone();
                b[i] = x;
                let _ = response(&b, &id);
            }
        }
    }

    #[test]
    fn only_the_asked_servers_answers_count() {
        let server: SocketAddr = "127.0.0.1:3478".parse().unwrap();
        let mut sent = Vec::new();
        let now = StdInstant::now();
        let mut g = Gathering::start(now, 1, &[server], None, |s, to, b| sent.push((s, to, b.to_vec()))).unwrap();
        assert_eq!(sent.len(), 1);
        let id: [u8; 12] = sent[0].2[8..20].try_into().unwrap();
        let mapped: SocketAddr = "203.0.113.7:40000".parse().unwrap();
        assert_eq!(g.answer(0, "127.0.0.1:9".parse().unwrap(), &reply(&id, mapped)), None, "another source");
        assert_eq!(g.answer(1, server, &reply(&id, mapped)), None, "another socket");
        assert_eq!(g.answer(0, server, &reply(&[0; 12], mapped)), None, "another transaction");
        assert!(!g.done(now));
        assert_eq!(g.answer(0, server, &reply(&id, mapped)), Some(Some(mapped)));
        assert!(g.done(now));
        assert!(Gathering::start(now, 1, &[], None, |_, _, _| {}).is_none());
        let g = Gathering::start(now, 1, &[server], None, |_, _, _| {}).unwrap();
        assert!(g.done(now + STUN_WAIT));
    }
}
