//! The `rings` node's configuration: a TOML file (unknown fields refused), checked in
//! full before anything starts. Every error names the field (and, for TOML syntax or
//! types, the line).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What `rings init` writes: every field, commented.
pub const DEFAULT_CONFIG: &str = r#"# rings node configuration (rings run -c config.toml). Unknown fields are refused.

# The network id: nodes (and browsers) of different networks never link.
network = 1
# The account key of this node (hex secp256k1 secret, written by `rings init`, mode 0600).
# Relative paths are relative to this file.
key_file = "account.key"
# How long the session key this node makes at start is valid, in days.
session_ttl_days = 30
# Or a session made beforehand by `rings new-session` (then the account key may live
# elsewhere): relative to this file; "" makes one from key_file at each start.
session_file = ""

# The addresses WebRTC binds on: each connection gets a UDP port of its own on every one
# (as a browser's RTCPeerConnection does), announced as a host candidate. Concrete
# addresses (not 0.0.0.0), port 0.
udp_listen = ["127.0.0.1:0"]
# Public IPs that map 1:1 to the addresses above, every port (a cloud instance's address,
# a 1:1 NAT): announced as server-reflexive candidates with the same port.
external_ips = []
# STUN servers: each connection asks them for its public address (a server-reflexive
# candidate, in its offer or answer). turn: URLs are checked but not used (no TURN client).
# [[ice_servers]]
# urls = "stun:127.0.0.1:3478"
# username = ""
# credential = ""

# The internal JSON-RPC API (every method, no authentication): a loopback address only.
# It answers only requests with a loopback Host and Content-Type application/json, so a
# web page the node's user visits cannot drive it.
api_address = "127.0.0.1:50000"
# The public bootstrap endpoint for browsers and other nodes (answerOffer, nodeDid and a
# status page only, with CORS for any site). Off unless set: any web page can ask it for
# this node's DID and, in the answer, its addresses. A bootstrap node sets it:
# public_address = "127.0.0.1:50001"

# The node's disk (redb): the records it holds and the bootstrap URLs that worked. An
# acknowledged put is on disk before it is acknowledged; a restart serves it again.
# Relative paths are relative to this file; "" keeps everything in memory.
storage_path = "rings.redb"
# Room for records held for the ring, in MiB (values are at most 16 KiB each).
storage_capacity_mb = 64

# Public endpoints of other nodes to join the ring through, tried in order at start.
seeds = []
# Links held at once (half of them may be opened by peers).
max_connections = 64
# Concurrent answerOffer handshakes on the public endpoint, and per client address, per minute.
max_handshakes = 16
handshakes_per_minute = 30

# error, warn, info, debug or trace (RUST_LOG overrides it).
log_level = "info"
"#;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    pub urls: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub credential: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_network")]
    pub network: u32,
    #[serde(default = "default_key_file")]
    pub key_file: PathBuf,
    #[serde(default = "default_ttl_days")]
    pub session_ttl_days: u32,
    #[serde(default)]
    pub session_file: String,
    #[serde(default = "default_udp")]
    pub udp_listen: Vec<String>,
    #[serde(default)]
    pub external_ips: Vec<String>,
    #[serde(default)]
    pub ice_servers: Vec<IceServer>,
    #[serde(default = "default_api")]
    pub api_address: String,
    #[serde(default)]
    pub public_address: Option<String>,
    #[serde(default)]
    pub seeds: Vec<String>,
    #[serde(default)]
    pub storage_path: String,
    #[serde(default = "default_capacity")]
    pub storage_capacity_mb: u32,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    #[serde(default = "default_max_handshakes")]
    pub max_handshakes: u32,
    #[serde(default = "default_rate")]
    pub handshakes_per_minute: u32,
    #[serde(default = "default_log")]
    pub log_level: String,
}

fn default_network() -> u32 {
    1
}
fn default_key_file() -> PathBuf {
    "account.key".into()
}
fn default_ttl_days() -> u32 {
    30
}
fn default_udp() -> Vec<String> {
    vec!["127.0.0.1:0".into()]
}
fn default_api() -> String {
    "127.0.0.1:50000".into()
}
fn default_capacity() -> u32 {
    64
}
fn default_max_connections() -> u32 {
    64
}
fn default_max_handshakes() -> u32 {
    16
}
fn default_rate() -> u32 {
    30
}
fn default_log() -> String {
    "info".into()
}

/// A configuration checked in full: addresses parsed, URLs and bounds checked.
#[derive(Clone, Debug)]
pub struct Checked {
    pub raw: Config,
    /// `key_file`, relative to the config file's folder.
    pub key_file: PathBuf,
    pub udp_listen: Vec<IpAddr>,
    pub external_ips: Vec<IpAddr>,
    /// The `stun:` servers, resolved (TURN is not served: str0m has no TURN client).
    pub stun: Vec<SocketAddr>,
    /// `storage_path`, relative to the config file's folder (`None`: in memory).
    pub storage: Option<PathBuf>,
    /// `session_file`, likewise (`None`: a session from `key_file` at start).
    pub session: Option<PathBuf>,
    pub api_address: SocketAddr,
    pub public_address: Option<SocketAddr>,
    pub seeds: Vec<HttpUrl>,
}

/// `host[:port]` of a `stun:` URL (port 3478 if none; a `?transport=udp` is allowed),
/// resolved to its first address.
fn stun_address(rest: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let hostport = match rest.split_once('?') {
        Some((h, "transport=udp")) => h,
        Some((_, q)) => return Err(format!("{q:?}: only UDP is served")),
        None => rest,
    };
    // No port: a name or IPv4 address without a colon, or a bracketed IPv6 address.
    let with_port = if hostport.ends_with(']') || !hostport.contains(':') { format!("{hostport}:3478") } else { hostport.to_string() };
    with_port.to_socket_addrs().map_err(|e| e.to_string())?.next().ok_or_else(|| "no address".to_string())
}

/// An `http://host:port[/path]` URL (the seeds' and `connectPeerViaHttp`'s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    pub authority: String,
    pub path: String,
}

impl HttpUrl {
    pub fn parse(s: &str) -> Result<HttpUrl, String> {
        let rest = s.strip_prefix("http://").ok_or_else(|| {
            if s.starts_with("https://") {
                format!("{s:?}: https is not supported yet (use http:// on a trusted network, or a TLS proxy)")
            } else {
                format!("{s:?} is not an http:// URL")
            }
        })?;
        let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
        let (host, port) = authority.rsplit_once(':').ok_or_else(|| format!("{s:?} has no port"))?;
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '@') {
            return Err(format!("{s:?} has a bad host"));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(format!("{s:?}: port {port:?} is not from 1 to 65535")),
        }
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{s:?} has a bad path"));
        }
        Ok(HttpUrl { authority: authority.to_string(), path: path.to_string() })
    }
}

impl core::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path)
    }
}

/// Why a configuration was refused: the field and what is wrong with it.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

fn field(name: &str, e: impl core::fmt::Display) -> ConfigError {
    ConfigError(format!("config field `{name}`: {e}"))
}

fn socket(name: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    // `127.0.0.1:99999` fails to parse as a port: say so.
    if let Some((_, port)) = s.rsplit_once(':') {
        if port.parse::<u64>().is_ok_and(|p| p > 65535) {
            return Err(field(name, format!("{s:?}: port {port} is out of range (0 to 65535)")));
        }
    }
    s.parse().map_err(|_| field(name, format!("{s:?} is not an IP address with a port, like \"127.0.0.1:50000\"")))
}

impl Config {
    /// Parses TOML text (`base`: the folder relative paths start from) and checks it.
    pub fn parse(text: &str, base: &Path) -> Result<Checked, ConfigError> {
        let raw: Config = toml::from_str(text).map_err(|e| ConfigError(format!("config: {e}")))?;
        raw.check(base)
    }

    pub fn load(path: &Path) -> Result<Checked, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::parse(&text, &base).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    fn check(self, base: &Path) -> Result<Checked, ConfigError> {
        if self.network == 0 {
            return Err(field("network", "must be from 1 to 4294967295"));
        }
        if !(1..=365).contains(&self.session_ttl_days) {
            return Err(field("session_ttl_days", "must be from 1 to 365"));
        }
        if self.udp_listen.is_empty() || self.udp_listen.len() > 8 {
            return Err(field("udp_listen", "needs 1 to 8 addresses"));
        }
        let udp_listen = self.udp_listen.iter().map(|s| socket("udp_listen", s)).collect::<Result<Vec<_>, _>>()?;
        if let Some(a) = udp_listen.iter().find(|a| a.ip().is_unspecified()) {
            return Err(field("udp_listen", format!("{a}: an unspecified address cannot be announced; name the interface's address")));
        }
        if let Some(a) = udp_listen.iter().find(|a| a.port() != 0) {
            return Err(field("udp_listen", format!("{a}: each connection binds its own port; give port 0")));
        }
        let udp_listen: Vec<IpAddr> = udp_listen.iter().map(SocketAddr::ip).collect();
        let external_ips = self
            .external_ips
            .iter()
            .map(|s| s.parse::<IpAddr>().map_err(|_| field("external_ips", format!("{s:?} is not an IP address"))))
            .collect::<Result<Vec<_>, _>>()?;
        if external_ips.len() > 8 {
            return Err(field("external_ips", "at most 8 addresses"));
        }
        let mut stun = Vec::new();
        if self.ice_servers.len() > 8 {
            return Err(field("ice_servers", "at most 8 servers"));
        }
        for s in &self.ice_servers {
            let ok = ["stun:", "turn:", "turns:"].iter().any(|p| s.urls.strip_prefix(p).is_some_and(|r| !r.is_empty()));
            if !ok {
                return Err(field("ice_servers.urls", format!("{:?} is not a stun:, turn: or turns: URL", s.urls)));
            }
            if let Some(rest) = s.urls.strip_prefix("stun:") {
                stun.push(stun_address(rest).map_err(|e| field("ice_servers.urls", format!("{:?}: {e}", s.urls)))?);
            }
        }
        let api_address = socket("api_address", &self.api_address)?;
        if !api_address.ip().is_loopback() {
            return Err(field("api_address", format!("{api_address}: the internal API has no authentication; it listens on loopback only (put a proxy with authentication in front to reach it from elsewhere)")));
        }
        let public_address = self.public_address.as_deref().map(|s| socket("public_address", s)).transpose()?;
        let seeds = self.seeds.iter().map(|s| HttpUrl::parse(s).map_err(|e| field("seeds", e))).collect::<Result<Vec<_>, _>>()?;
        if seeds.len() > 64 {
            return Err(field("seeds", "at most 64 URLs"));
        }
        if !(2..=1024).contains(&self.max_connections) {
            return Err(field("max_connections", "must be from 2 to 1024"));
        }
        if !(1..=1024).contains(&self.max_handshakes) {
            return Err(field("max_handshakes", "must be from 1 to 1024"));
        }
        if !(1..=100_000).contains(&self.handshakes_per_minute) {
            return Err(field("handshakes_per_minute", "must be from 1 to 100000"));
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log_level.as_str()) {
            return Err(field("log_level", format!("{:?} is not error, warn, info, debug or trace", self.log_level)));
        }
        if !(1..=65_536).contains(&self.storage_capacity_mb) {
            return Err(field("storage_capacity_mb", "must be from 1 to 65536"));
        }
        let rel = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
        let key_file = rel(&self.key_file);
        let storage = (!self.storage_path.is_empty()).then(|| rel(Path::new(&self.storage_path)));
        let session = (!self.session_file.is_empty()).then(|| rel(Path::new(&self.session_file)));
        Ok(Checked { key_file, udp_listen, external_ips, stun, storage, session, api_address, public_address, seeds, raw: self })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Checked, ConfigError> {
        Config::parse(t, Path::new("/etc/rings"))
    }

    #[test]
    fn the_default_file_parses() {
        let c = parse(DEFAULT_CONFIG).unwrap();
        assert_eq!(c.api_address, "127.0.0.1:50000".parse().unwrap());
        assert_eq!(c.public_address, None);
        assert_eq!(c.key_file, Path::new("/etc/rings/account.key"));
        assert_eq!(c.storage.as_deref(), Some(Path::new("/etc/rings/rings.redb")));
        assert_eq!(parse("storage_path = \"\"").unwrap().storage, None);
        assert!(c.seeds.is_empty());
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            ("netwrk = 3", "netwrk"),
            ("api_address = \"127.0.0.1:70000\"", "api_address"),
            ("api_address = \"0.0.0.0:5000\"", "api_address"),
            ("external_ips = [\"1.2.3.4\", \"1.2.3.4\", \"1.2.3.4\", \"1.2.3.4\", \"1.2.3.4\", \"1.2.3.4\", \"1.2.3.4\", \"1.2.3.4\", \"1.2.3.4\"]", "external_ips"),
            ("public_address = \"nowhere\"", "public_address"),
            ("seeds = [\"ftp://x:1\"]", "seeds"),
            ("seeds = [\"http://x:0\"]", "seeds"),
            ("udp_listen = [\"0.0.0.0:0\"]", "udp_listen"),
            ("udp_listen = [\"127.0.0.1:5000\"]", "udp_listen"),
            ("max_connections = 1", "max_connections"),
            ("storage_capacity_mb = 0", "storage_capacity_mb"),
            ("log_level = \"loud\"", "log_level"),
            ("[[ice_servers]]\nurls = \"http://x\"", "ice_servers.urls"),
            ("network = \"one\"", "network"),
        ];
        for (text, name) in cases {
            let e = parse(text).expect_err(text).0;
            assert!(e.contains(name), "{text:?} gave {e:?}");
        }
        // A TOML error names the line.
        let e = parse("network = 1\nnetwrk = 3\n").unwrap_err().0;
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn stun_servers_are_resolved_and_turn_is_only_checked() {
        let c = parse("[[ice_servers]]\nurls = \"stun:127.0.0.1:3479\"\n[[ice_servers]]\nurls = \"stun:127.0.0.2\"\n[[ice_servers]]\nurls = \"turn:127.0.0.1:3478\"\nusername = \"u\"\ncredential = \"p\"").unwrap();
        assert_eq!(c.stun, ["127.0.0.1:3479".parse().unwrap(), "127.0.0.2:3478".parse::<SocketAddr>().unwrap()]);
        assert_eq!(parse("[[ice_servers]]\nurls = \"stun:[::1]\"").unwrap().stun, ["[::1]:3478".parse::<SocketAddr>().unwrap()]);
        for bad in ["stun:127.0.0.1:99999", "stun:127.0.0.1:1?transport=tcp"] {
            let e = parse(&format!("[[ice_servers]]\nurls = \"{bad}\"")).unwrap_err().0;
            assert!(e.contains("ice_servers.urls"), "{bad}: {e}");
        }
    }

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://127.0.0.1:50001").unwrap();
        assert_eq!((u.authority.as_str(), u.path.as_str()), ("127.0.0.1:50001", "/"));
        assert_eq!(HttpUrl::parse("http://h:1/rpc").unwrap().path, "/rpc");
        for bad in ["127.0.0.1:1", "http://:1", "http://h", "http://h:65536", "https://h:1", "http://a b:1"] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
