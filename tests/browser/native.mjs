// Native `rings` nodes for the browser tests, the benchmark and the example's main job:
// `rings init` in a scratch folder, the config set to loopback ports the kernel picks,
// `rings run`, and its JSON-RPC. Usage as a program (the main job):
//   node tests/browser/native.mjs [public-port] [api-port]  (runs one node until killed)
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
/** The binary: `RINGS`, else the debug build (read at each start). */
export const rings = () => process.env.RINGS ?? join(ROOT, "target/debug/rings");

/** Starts a node; resolves once it prints where it listens: `{ did, api, public, stop }`. */
export async function startNative(name, seeds = [], { api = 0, pub = 0, dir } = {}) {
  const RINGS = rings();
  if (!existsSync(RINGS)) throw new Error(`${RINGS} is missing: run cargo build first`);
  dir ??= mkdtempSync(join(tmpdir(), `rings-${name}-`));
  execFileSync(RINGS, ["init", "--force"], { cwd: dir });
  const path = join(dir, "config.toml");
  const set = { api_address: `"127.0.0.1:${api}"`, public_address: `"127.0.0.1:${pub}"`, seeds: JSON.stringify(seeds) };
  const lines = readFileSync(path, "utf8").split("\n").map((l) => {
    const k = Object.keys(set).find((k) => l.startsWith(`${k} =`) || l.startsWith(`# ${k} =`));
    return k ? `${k} = ${set[k]}` : l;
  });
  writeFileSync(path, lines.join("\n"));
  const child = spawn(RINGS, ["run", "-c", path], { cwd: dir, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" } });
  const line = await new Promise((ok, fail) => {
    const rl = createInterface({ input: child.stdout });
    rl.once("line", (l) => ok(l));
    child.once("exit", (code) => fail(new Error(`rings run (${name}) exited with ${code}`)));
  });
  const field = (k) => line.split(/\s+/).find((w) => w.startsWith(`${k}=`))?.slice(k.length + 1);
  if (!line.startsWith("rings: ")) throw new Error(`rings run said ${line}`);
  return { name, dir, did: field("did"), api: field("api"), public: field("public"), child, stop: () => child.kill("SIGTERM") };
}

/** One JSON-RPC call: its result, or a thrown Error with the JSON-RPC error's code. */
export async function rpc(url, method, params = {}) {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const v = await res.json();
  if (v.error) throw Object.assign(new Error(`${method}: ${v.error.message}`), { rpc: v.error });
  return v.result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const n = await startNative("main", [], { pub: Number(process.argv[2] ?? 50001), api: Number(process.argv[3] ?? 50000) });
  console.log(`native node ${n.did}: public ${n.public} (bootstrap URL for pages), JSON-RPC ${n.api}`);
  const stop = () => { n.stop(); };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  n.child.on("exit", (code) => process.exit(code ?? 0));
}
