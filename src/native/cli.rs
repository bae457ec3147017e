//! The `rings` command: the native node (`init`, `run`) and a client of a running node's
//! JSON-RPC (`peer list`, `connect`, `send`, `put`, `get`, `service`, `inspect`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use super::config::{Config, HttpUrl, DEFAULT_CONFIG};
use super::{http, keys};
use serde_json::{json, Value as Json};

#[derive(Parser)]
#[command(name = "rings", version, about = "A rings-node: a Chord DHT over WebRTC, for browsers and servers")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args)]
struct Client {
    /// The node's internal JSON-RPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:50000", global = true)]
    api: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Writes a commented config.toml and a new account key (mode 0600) beside it.
    Init {
        /// Where the config goes.
        #[arg(long, default_value = "config.toml")]
        location: PathBuf,
        /// Replace an existing config and key.
        #[arg(long)]
        force: bool,
    },
    /// Delegates a new session key from the config's account key (its network and
    /// session_ttl_days) to a file; set `session_file` to it and the account key may
    /// live elsewhere.
    NewSession {
        #[arg(short, long, default_value = "config.toml")]
        config: PathBuf,
        /// Where the session goes (default: session.key beside the config).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing session file.
        #[arg(long)]
        force: bool,
    },
    /// Runs the node until SIGINT or SIGTERM (then leaves the ring and exits 0).
    Run {
        #[arg(short, long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Links to peers.
    Connect {
        #[command(subcommand)]
        to: ConnectTo,
        #[command(flatten)]
        client: Client,
    },
    /// Peers with an open link.
    Peer {
        #[command(subcommand)]
        cmd: PeerCmd,
        #[command(flatten)]
        client: Client,
    },
    /// Sends a text message (in `--namespace`, as a page's `provider.client(ns).send`).
    Send {
        did: String,
        text: String,
        #[arg(long, default_value = "rings")]
        namespace: String,
        #[command(flatten)]
        client: Client,
    },
    /// Stores a text value under a key (replicated on the ring).
    Put {
        key: String,
        value: String,
        #[arg(long, default_value = "rings")]
        namespace: String,
        #[arg(long, default_value_t = 3_600_000)]
        ttl_ms: u64,
        #[command(flatten)]
        client: Client,
    },
    /// Reads the value under a key.
    Get {
        key: String,
        #[arg(long, default_value = "rings")]
        namespace: String,
        #[command(flatten)]
        client: Client,
    },
    /// Registers or looks up a service name.
    Service {
        #[command(subcommand)]
        cmd: ServiceCmd,
        #[command(flatten)]
        client: Client,
    },
    /// The node's ring pointers, fingers, links, store and counters.
    Inspect {
        #[command(flatten)]
        client: Client,
    },
    /// Application events since the last call (messages, peers up and down).
    Events {
        #[command(flatten)]
        client: Client,
    },
}

#[derive(Subcommand)]
enum ConnectTo {
    /// Bootstraps through another node's public endpoint (http://host:port).
    Node { url: String },
    /// Links to a DID, signalled through the ring.
    Did { did: String },
}

#[derive(Subcommand)]
enum PeerCmd {
    List,
    Disconnect { did: String },
}

#[derive(Subcommand)]
enum ServiceCmd {
    Register {
        name: String,
        #[arg(long, default_value = "rings")]
        namespace: String,
    },
    Lookup {
        name: String,
        #[arg(long, default_value = "rings")]
        namespace: String,
    },
}

/// Runs the command line of this process.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Init { location, force } => init(&location, force),
        Cmd::Run { config } => run(&config),
        Cmd::NewSession { config, out, force } => new_session(&config, out, force),
        Cmd::Connect { to: ConnectTo::Node { url }, client } => rpc(&client, "connectPeerViaHttp", json!({ "url": url })),
        Cmd::Connect { to: ConnectTo::Did { did }, client } => rpc(&client, "connectWithDid", json!({ "did": did })),
        Cmd::Peer { cmd: PeerCmd::List, client } => rpc(&client, "listPeers", json!({})),
        Cmd::Peer { cmd: PeerCmd::Disconnect { did }, client } => rpc(&client, "disconnect", json!({ "did": did })),
        Cmd::Send { did, text, namespace, client } => rpc(&client, "sendMessage", json!({ "did": did, "text": text, "namespace": namespace })),
        Cmd::Put { key, value, namespace, ttl_ms, client } => {
            rpc(&client, "put", json!({ "key": key, "value": value, "namespace": namespace, "ttlMs": ttl_ms }))
        }
        Cmd::Get { key, namespace, client } => rpc(&client, "get", json!({ "key": key, "namespace": namespace })),
        Cmd::Service { cmd: ServiceCmd::Register { name, namespace }, client } => {
            rpc(&client, "registerService", json!({ "name": name, "namespace": namespace }))
        }
        Cmd::Service { cmd: ServiceCmd::Lookup { name, namespace }, client } => {
            rpc(&client, "lookupService", json!({ "name": name, "namespace": namespace }))
        }
        Cmd::Inspect { client } => rpc(&client, "nodeInfo", json!({})),
        Cmd::Events { client } => rpc(&client, "pollEvents", json!({})),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rings: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init(location: &std::path::Path, force: bool) -> Result<(), String> {
    if location.exists() && !force {
        return Err(format!("{} exists (use --force to replace it)", location.display()));
    }
    let dir = location.parent().filter(|p| !p.as_os_str().is_empty()).map(PathBuf::from).unwrap_or_else(|| ".".into());
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Checked before anything is written: the default must parse here.
    let cfg = Config::parse(DEFAULT_CONFIG, &dir).map_err(|e| e.to_string())?;
    if cfg.key_file.exists() && !force {
        return Err(format!("{} exists (use --force to replace it)", cfg.key_file.display()));
    }
    let account = keys::write_new_key(&cfg.key_file, force)?;
    std::fs::write(location, DEFAULT_CONFIG).map_err(|e| format!("cannot write {}: {e}", location.display()))?;
    println!("wrote {} and {} (account {})", location.display(), cfg.key_file.display(), account.did().to_checksum());
    Ok(())
}

fn new_session(config: &std::path::Path, out: Option<PathBuf>, force: bool) -> Result<(), String> {
    let cfg = Config::load(config).map_err(|e| e.to_string())?;
    let out = out.unwrap_or_else(|| config.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("session.key"), |d| d.join("session.key")));
    let account = keys::read_key(&cfg.key_file)?;
    let wall = super::driver::wall_ms();
    let ttl = crate::time::Duration::from_secs(u64::from(cfg.raw.session_ttl_days) * 86_400);
    let s = keys::write_session(&out, &account, cfg.raw.network, crate::time::Instant(wall), ttl, force)?;
    let days = cfg.raw.session_ttl_days;
    println!("wrote {} (account {}, network {}, valid {days} days): set session_file to it", out.display(), s.did().to_checksum(), cfg.raw.network);
    Ok(())
}

fn run(path: &std::path::Path) -> Result<(), String> {
    let cfg = Config::load(path).map_err(|e| e.to_string())?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("rings_node={0},rings={0}", cfg.raw.log_level)));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut running = super::start(&cfg).await?;
        let udp: Vec<String> = running.udp.iter().map(|a| format!("{}:*", std::net::SocketAddr::new(*a, 0).ip())).collect();
        // One line for scripts and tests: where this node listens.
        println!(
            "rings: did={} api=http://{} public={} udp={}",
            running.node.did.to_checksum(),
            running.api,
            running.public.map_or("none".into(), |p| format!("http://{p}")),
            udp.join(",")
        );
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| e.to_string())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            r = &mut running.task => {
                let why = match r { Err(e) if e.is_panic() => "it panicked", _ => "it stopped" };
                return Err(format!("the node task ended unexpectedly ({why})"));
            }
        }
        tracing::info!("leaving the ring");
        running.node.shutdown().await;
        Ok::<(), String>(())
    })?;
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    Ok(())
}

fn rpc(client: &Client, method: &str, params: Json) -> Result<(), String> {
    let url = HttpUrl::parse(&client.api).map_err(|e| format!("--api: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let v = rt.block_on(http::post_rpc(&url, method, params, 64 << 20))?;
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(())
}
