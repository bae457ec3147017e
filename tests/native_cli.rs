//! The `rings` command as users run it: init, run, a bad config, and every JSON-RPC
//! method and error on real processes over loopback.
#![cfg(all(feature = "native", not(target_arch = "wasm32")))]

mod common;

use common::rings::*;
use serde_json::json;

#[test]
fn init_then_run_answers_node_info_and_a_sigterm_leaves_cleanly() {
    let dir = scratch("init-run");
    let out = rings(&["init"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(dir.join("account.key")).unwrap().permissions().mode() & 0o777, 0o600);
    // A second init overwrites nothing.
    let key = std::fs::read(dir.join("account.key")).unwrap();
    let again = rings(&["init"], &dir);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read(dir.join("account.key")).unwrap(), key);
    // The written config runs as it is (on free ports here: the defaults may be taken).
    init_ports(&dir);
    let mut node = run(&dir);
    let info = ok(&node.api, "nodeInfo", json!({}));
    assert_eq!(info["did"], node.did.as_str());
    assert_eq!(info["joined"], false);
    assert_eq!(ok(&node.api, "nodeDid", json!(null)), node.did.as_str());
    assert_eq!(ok(&node.public, "nodeDid", json!({})), node.did.as_str());
    for args in [&["--help"][..], &["--version"], &["run", "--help"], &["put", "--help"]] {
        let o = rings(args, &dir);
        assert!(o.status.success() && !o.stdout.is_empty(), "{args:?}");
    }
    let pid = node.child.id() as i32;
    assert_eq!(unsafe_kill(pid, 15), 0);
    let status = wait_exit(&mut node.child, 10).expect("exits within 10 s of SIGTERM");
    assert!(status.success(), "{status:?}");
}

fn init_ports(dir: &std::path::Path) {
    let p = dir.join("config.toml");
    let t = std::fs::read_to_string(&p).unwrap();
    let t = t.replace("127.0.0.1:50000", "127.0.0.1:0").replace("# public_address = \"127.0.0.1:50001\"", "public_address = \"127.0.0.1:0\"");
    std::fs::write(p, t).unwrap();
}

fn unsafe_kill(pid: i32, sig: i32) -> i32 {
    std::process::Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().map_or(-1, |s| s.code().unwrap_or(-1))
}

fn wait_exit(c: &mut std::process::Child, secs: u64) -> Option<std::process::ExitStatus> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if let Ok(Some(s)) = c.try_wait() {
            return Some(s);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    None
}

#[test]
fn a_bad_config_names_its_field_and_starts_nothing() {
    let cases = [
        ("colour = \"blue\"", "colour"),
        ("seeds = [\"htp://127.0.0.1:5\"]", "seeds"),
        ("api_address = \"127.0.0.1:65536\"", "api_address"),
        ("public_address = \"127.0.0.1:99999\"", "public_address"),
        ("max_connections = \"many\"", "max_connections"),
    ];
    for (i, (line, name)) in cases.iter().enumerate() {
        let dir = scratch(&format!("bad-config-{i}"));
        init(&dir, &[]);
        let p = dir.join("config.toml");
        let text = std::fs::read_to_string(&p).unwrap();
        // Replace the field if the default has it, else add it.
        let key = line.split(" = ").next().unwrap();
        let text = if text.lines().any(|l| l.starts_with(&format!("{key} ="))) {
            text.lines().map(|l| if l.starts_with(&format!("{key} =")) { line.to_string() } else { l.to_string() }).collect::<Vec<_>>().join("\n")
        } else {
            format!("{line}\n{text}")
        };
        std::fs::write(&p, text).unwrap();
        let t = std::time::Instant::now();
        let out = rings(&["run"], &dir);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{line}: ran");
        assert!(err.contains(name), "{line}: {err}");
        assert!(out.stdout.is_empty(), "{line}: started: {}", String::from_utf8_lossy(&out.stdout));
        assert!(t.elapsed().as_secs() < 5);
    }
    // A missing config says so.
    let out = rings(&["run", "-c", "/nonexistent/rings.toml"], &scratch("no-config"));
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("/nonexistent/rings.toml"));
}

#[test]
fn bad_requests_get_json_rpc_errors_and_the_public_endpoint_serves_only_bootstrap() {
    let node = start("rpc-errors", &[], &[]);
    let code = |v: &serde_json::Value| v["error"]["code"].as_i64().unwrap_or(0);
    for (body, want) in [
        ("{not json", -32700),
        ("[1,2]", -32600),
        ("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"nodeDid\"}", -32600),
        ("{\"jsonrpc\":\"2.0\",\"id\":1}", -32600),
        ("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"nodeDid\"}", -32600),
        ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"nodeDid\",\"params\":[1]}", -32602),
        ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"selfDestruct\"}", -32601),
    ] {
        let (status, v) = post(&node.api, body);
        assert_eq!((status, code(&v)), (200, want), "{body}: {v}");
    }
    // Wrong params: missing, wrong type, not a DID, not hex, out of range.
    for (m, p, want) in [
        ("connectWithDid", json!({}), -32602),
        ("connectWithDid", json!({ "did": 5 }), -32602),
        ("connectWithDid", json!({ "did": "0x123" }), -32001),
        ("sendMessage", json!({ "did": node.did, "hex": "zz" }), -32602),
        ("sendMessage", json!({ "did": node.did, "text": "a", "hex": "00" }), -32602),
        ("put", json!({ "key": "k", "value": "v", "ttlMs": -1 }), -32000),
        ("pollEvents", json!({ "max": 0 }), -32602),
        ("registerService", json!({ "name": "x", "ttlMs": 10 }), -32602),
        ("answerOffer", json!({ "offer": "rings1.AAAA" }), -32002),
        ("acceptAnswer", json!({ "answer": "hello" }), -32003),
        ("connectPeerViaHttp", json!({ "url": "ftp://x" }), -32602),
        ("connectPeerViaHttp", json!({ "url": "http://127.0.0.1:1" }), -32005),
        ("connectWithSeed", json!({ "urls": [] }), -32602),
    ] {
        let e = call(&node.api, m, p.clone()).expect_err(m);
        assert_eq!(e["code"], want, "{m} {p}: {e}");
        if (-32099..=-32000).contains(&want) {
            assert!(e["data"]["code"].is_string(), "{e}");
        }
    }
    // The public endpoint: internal methods refused; oversized bodies refused as JSON-RPC.
    for m in ["listPeers", "nodeInfo", "sendMessage", "put", "createOffer", "connectPeerViaHttp"] {
        assert_eq!(call(&node.public, m, json!({})).unwrap_err()["code"], -32601, "{m}");
    }
    let big = format!("{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"answerOffer\",\"params\":{{\"offer\":\"{}\"}}}}", "a".repeat(100_000));
    let (status, v) = post(&node.public, big);
    assert_eq!((status, code(&v)), (200, -32600), "{v}");
    let huge = vec![b' '; 41 << 20];
    assert_eq!(code(&post(&node.api, huge).1), -32600);
    // Still serving.
    assert_eq!(ok(&node.api, "nodeDid", json!({})), node.did.as_str());
}

/// A raw HTTP/1.1 exchange with `addr` (host:port): the status line's code and the body.
fn raw_http(addr: &str, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

#[test]
fn the_internal_endpoint_refuses_cross_site_and_rebound_requests() {
    let node = start("csrf", &[], &[]);
    let addr = node.api.trim_start_matches("http://").to_string();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"nodeDid"}"#;
    let req = |host: &str, ct: &str| format!("POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    // What a cross-site form can send (text/plain), and a DNS-rebound name: refused.
    let (code, text) = raw_http(&addr, &req(&addr, "text/plain"));
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("-32600") && text.contains("Content-Type"), "{text}");
    let (code, text) = raw_http(&addr, &req("rebound.example:50000", "application/json"));
    assert_eq!(code, 403, "{text}");
    assert!(!text.contains(&node.did), "{text}");
    // The same request from loopback, as JSON: served.
    let (code, text) = raw_http(&addr, &req(&addr, "application/json"));
    assert_eq!(code, 200, "{text}");
    assert!(text.contains(&node.did), "{text}");
    let (code, text) = raw_http(&addr, &req("localhost", "application/json; charset=utf-8"));
    assert_eq!((code, text.contains(&node.did)), (200, true), "{text}");
    // No preflight is ever granted, so no cross-site fetch can send it JSON.
    let pre = format!("OPTIONS / HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n");
    let mut raw = String::new();
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(pre.as_bytes()).unwrap();
        let _ = s.read_to_string(&mut raw);
    }
    assert!(!raw.starts_with("HTTP/1.1 2"), "{raw}");
    assert!(!raw.to_ascii_lowercase().contains("access-control-allow-origin"), "{raw}");
    // The public endpoint is for browsers: any site may ask it for the DID.
    let paddr = node.public.trim_start_matches("http://").to_string();
    let (code, text) = raw_http(&paddr, &req("rings.example", "text/plain"));
    assert_eq!((code, text.contains(&node.did)), (200, true), "{text}");
}

/// A TCP connection to `to` from the loopback address `from` (all of 127/8 is loopback).
fn connect_from(from: [u8; 4], to: &str) -> Option<std::net::TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().ok()?;
        s.bind((std::net::Ipv4Addr::from(from), 0).into()).ok()?;
        let c = s.connect(to.parse().ok()?).await.ok()?;
        let std = c.into_std().ok()?;
        std.set_nonblocking(false).ok()?;
        Some(std)
    })
}

#[test]
fn silent_connections_are_bounded_per_client_and_in_all_and_cut_off() {
    use std::io::Read;
    let node = start("slowloris", &[], &[]);
    let paddr = node.public.trim_start_matches("http://").to_string();
    let fds = |pid: u32| std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let before = fds(node.child.id());
    let half = |s: &std::net::TcpStream| std::io::Write::write_all(&mut &*s, b"POST / HTTP/1.1\r\nHost: x\r\n").is_ok();
    // One client address: 40 connections, 8 are kept, the rest closed at once.
    let one: Vec<_> = (0..40).filter_map(|_| connect_from([127, 0, 0, 2], &paddr)).filter(|s| half(s)).collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let open = one
        .iter()
        .filter(|s| {
            s.set_read_timeout(Some(std::time::Duration::from_millis(50))).unwrap();
            let mut b = [0u8; 1];
            // Closed: EOF (0) or a reset; kept: the read times out.
            matches!((&mut &**s).read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut)
        })
        .count();
    assert_eq!(open, 8, "connections kept from one address");
    // 600 more from 75 addresses (8 each): at most 256 are held in all.
    let many: Vec<_> = (0..600u32).filter_map(|i| connect_from([127, 0, 1, 1 + (i / 8) as u8], &paddr)).filter(|s| half(s)).collect();
    assert!(many.len() >= 500, "only {} connected", many.len());
    std::thread::sleep(std::time::Duration::from_secs(1));
    let held = fds(node.child.id()) - before;
    assert!(held <= 256 + 8, "the node holds {held} descriptors for silent clients");
    // Within the header timeout (10 s) the server closes them; an honest request from
    // another address is then served, in well under a minute.
    let t = std::time::Instant::now();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"nodeDid"}"#;
    let req = format!("POST / HTTP/1.1\r\nHost: {paddr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let (code, text) = raw_http(&paddr, &req);
    assert_eq!((code, text.contains(&node.did)), (200, true), "{text}");
    assert!(t.elapsed().as_secs() < 40, "served after {:?}", t.elapsed());
    let mut first = &many[0];
    first.set_read_timeout(Some(std::time::Duration::from_secs(15))).unwrap();
    let mut buf = [0u8; 512];
    let n = first.read(&mut buf).expect("the server closes a silent connection (no read timeout here)");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || text.starts_with("HTTP/1.1 4"), "a silent client was answered {text:?}");
    drop((one, many));
    // And the internal endpoint did not notice.
    assert_eq!(ok(&node.api, "nodeDid", json!({})), node.did.as_str());
}

#[test]
fn a_session_made_by_new_session_runs_the_node_without_its_account_key() {
    let dir = scratch("new-session");
    init(&dir, ANY_PORTS);
    let out = rings(&["new-session"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains("session.key"), "{said}");
    // The account key goes elsewhere; the node runs on the session alone, as the account.
    std::fs::rename(dir.join("account.key"), dir.join("offline.key")).unwrap();
    let p = dir.join("config.toml");
    let t = std::fs::read_to_string(&p).unwrap().replace("session_file = \"\"", "session_file = \"session.key\"");
    std::fs::write(&p, t).unwrap();
    let node = run(&dir);
    let did = said.split("account ").nth(1).and_then(|r| r.split(',').next()).unwrap_or_default().to_string();
    assert_eq!(node.did, did, "{said}");
    assert_eq!(ok(&node.api, "nodeDid", json!({})), node.did.as_str());
    drop(node);
    // A session for another network is refused, naming the file.
    let t = std::fs::read_to_string(&p).unwrap().replace("network = 1", "network = 2");
    std::fs::write(&p, t).unwrap();
    let out = rings(&["run"], &dir);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("session.key"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_client_subcommands_drive_a_running_node() {
    let a = start("cli-a", &[], &[]);
    let b = start("cli-b", &[], &[]);
    let dir = scratch("cli-client");
    // Each prints the JSON-RPC result (pretty JSON) and exits 0; an error exits 1 with
    // the message on stderr.
    let cli = |api: &str, args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--api", api]);
        let o = rings(&all, &dir);
        (o.status.success(), String::from_utf8_lossy(&o.stdout).to_string(), String::from_utf8_lossy(&o.stderr).to_string())
    };
    let (okay, out, err) = cli(&b.api, &["connect", "node", &a.public]);
    assert!(okay && out.contains(&a.did), "{out} {err}");
    let (okay, out, _) = cli(&b.api, &["peer", "list"]);
    assert!(okay && out.contains(&a.did), "{out}");
    let (okay, _, err) = cli(&b.api, &["put", "colour", "teal", "--namespace", "cli"]);
    assert!(okay, "{err}");
    let (okay, out, _) = cli(&a.api, &["get", "colour", "--namespace", "cli"]);
    assert!(okay && out.contains("\"text\": \"teal\""), "{out}");
    let (okay, _, err) = cli(&a.api, &["service", "register", "printer"]);
    assert!(okay, "{err}");
    let (okay, out, _) = cli(&b.api, &["service", "lookup", "printer"]);
    assert!(okay && out.contains(&a.did), "{out}");
    let (okay, _, err) = cli(&b.api, &["send", &a.did, "hello from the command line"]);
    assert!(okay, "{err}");
    let heard = eventually(10, "the message", || {
        let (_, out, _) = cli(&a.api, &["events"]);
        if out.contains("hello from the command line") {
            Ok(out)
        } else {
            Err(out)
        }
    });
    assert!(heard.contains(&b.did), "{heard}");
    let (okay, out, _) = cli(&a.api, &["inspect"]);
    assert!(okay && out.contains("\"successor\"") && out.contains("\"stats\""), "{out}");
    let (okay, _, _) = cli(&b.api, &["connect", "did", &a.did]);
    assert!(okay);
    let (okay, _, _) = cli(&b.api, &["peer", "disconnect", &a.did]);
    assert!(okay);
    // A bad DID, and no node at the address: exit 1 with the reason.
    let (okay, _, err) = cli(&a.api, &["send", "0x123", "x"]);
    assert!(!okay && err.contains("DID"), "{err}");
    let (okay, _, err) = cli("http://127.0.0.1:1", &["peer", "list"]);
    assert!(!okay && err.contains("127.0.0.1:1"), "{err}");
}
