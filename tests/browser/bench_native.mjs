// `npm run bench:native`: pages and native `rings` nodes on loopback, in one run:
// HTTP bootstrap time; page ↔ native round trip and throughput beside a raw
// RTCDataChannel pair in the same page; native ↔ native throughput; native memory per
// link and per 10,000 records. Uses target/release/rings (RINGS= to override). Prints
// markdown.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { serve } from "./server.mjs";
import { launch, openPage } from "./chromium.mjs";
import { startNative, rpc, rings } from "./native.mjs";

process.env.RINGS ??= join(new URL("../..", import.meta.url).pathname, "target/release/rings");
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
const delivered = async (n) => (await rpc(n.api, "nodeInfo")).stats.messagesDelivered;
const waitDelivered = async (n, target, ms = 120000) => {
  const t0 = Date.now();
  while ((await delivered(n)) < target) {
    if (Date.now() - t0 > ms) throw new Error("timed out waiting for delivery");
    await sleep(5);
  }
};

const server = await serve(0);
const base = `http://127.0.0.1:${server.address().port}`;
const a = await startNative("bench-a");
const b = await startNative("bench-b", [a.public]);
const browser = await launch();
const out = [];
try {
  const page = await openPage(browser, base);
  await page.evaluate(async () => {
    window.H = await import("/tests/browser/harness.js");
    window.B = await import("/tests/browser/bench.js");
  });

  // HTTP bootstrap: a new Provider each time, offer → POST → answer → link; and → joined.
  const boot = await page.evaluate(async (url) => {
    const link = [], join = [];
    for (let i = 0; i < 7; i++) {
      const p = await H.R.Provider.create({ account: await H.R.Account.generate() });
      const t0 = performance.now();
      await p.connectViaHttp(url);
      link.push(performance.now() - t0);
      await H.waitFor("joined", () => p.info().joined, 20000, 2);
      join.push(performance.now() - t0);
      await p.close();
    }
    return { link: B.median(link), join: B.median(join) };
  }, a.public);

  // One page Provider in the native ring for the rest.
  await page.evaluate(async (url) => {
    window.p = await H.R.Provider.create({ account: await H.R.Account.generate() });
    await p.connectViaHttp(url);
    await H.waitFor("joined", () => p.info().joined, 20000);
    window.raw = await B.rawPair();
  }, a.public);
  await sleep(500);

  const rtt = await page.evaluate(async (did) => {
    const c = p.client("ping");
    await c.request(did, new Uint8Array(32)); // the session opens
    const ts = [];
    for (let i = 0; i < 200; i++) { const t = performance.now(); await c.request(did, new Uint8Array(32)); ts.push(performance.now() - t); }
    return { native: B.median(ts), raw: await B.rawRtt(raw, 200) };
  }, a.did);

  // Throughput page → native, one way: the native node's delivered count is watched
  // from here. Five rounds alternating with the raw channel in the page.
  const oneWay = async (size, count) => {
    const r = { native: [], raw: [] };
    for (let round = 0; round < 5; round++) {
      const before = await delivered(a);
      const t0 = Date.now();
      await page.evaluate(async ([did, size, count]) => {
        const msg = new Uint8Array(size);
        const c = p.client("tp");
        for (let i = 0; i < count; i++) await c.send(did, msg);
      }, [a.did, size, count]);
      await waitDelivered(a, before + count);
      r.native.push((size * count) / ((Date.now() - t0) / 1000) / 1e6);
      r.raw.push(await page.evaluate(([size, count]) => B.rawThroughput(raw, size, count), [size, count]));
    }
    return { native: median(r.native), raw: median(r.raw) };
  };
  const tp16k = await oneWay(16 << 10, 400);
  const tp1m = await oneWay(1 << 20, 24);

  // Native → native over their link, through JSON-RPC `sendMessage` (the data as hex).
  const nativeTp = async (size, count) => {
    const hex = "ab".repeat(size);
    const rs = [];
    for (let round = 0; round < 3; round++) {
      const before = await delivered(b);
      const t0 = Date.now();
      for (let i = 0; i < count; i++) await rpc(a.api, "sendMessage", { did: b.did, hex, raw: true });
      await waitDelivered(b, before + count);
      rs.push((size * count) / ((Date.now() - t0) / 1000) / 1e6);
    }
    return median(rs);
  };
  const nn16k = await nativeTp(16 << 10, 400);
  const nn1m = await nativeTp(1 << 20, 24);
  await page.evaluate(async () => { raw.close(); await p.close(); });

  // Memory per link: a fresh node, then 16 Providers (in 2 pages) bootstrapped through it.
  const m = await startNative("bench-mem");
  await sleep(1000);
  const idle = rss(m.child.pid);
  const pages = [await openPage(browser, base), await openPage(browser, base)];
  for (const pg of pages) {
    await pg.evaluate(async (url) => {
      window.H = await import("/tests/browser/harness.js");
      window.ps = [];
      for (let i = 0; i < 8; i++) {
        const q = await H.R.Provider.create({ account: await H.R.Account.generate() });
        await q.connectViaHttp(url);
        ps.push(q);
      }
    }, m.public);
  }
  await sleep(5000);
  const links = (await rpc(m.api, "nodeInfo")).connections;
  const linked = rss(m.child.pid);
  for (const pg of pages) await pg.close();

  // Memory per record: 10,000 puts of 100 B to a node alone (it holds them all), 16 at once.
  const s = await startNative("bench-store");
  await sleep(500);
  const before = rss(s.child.pid);
  const value = "x".repeat(100);
  const t0 = Date.now();
  for (let i = 0; i < 10000; i += 16) await Promise.all(Array.from({ length: Math.min(16, 10000 - i) }, (_, j) => rpc(s.api, "put", { key: `k${i + j}`, value })));
  const putMs = Date.now() - t0;
  const after = rss(s.child.pid);
  const records = (await rpc(s.api, "nodeInfo")).stats.records;
  for (const n of [m, s]) n.stop();

  const f = (x, d = 1) => x.toFixed(d);
  out.push(`rings: ${rings()}`);
  out.push("| measure | page ↔ native rings | page ↔ page raw RTCDataChannel | ratio |\n|---|---:|---:|---:|");
  out.push(`| 32 B round trip (ping request → echo), median of 200 | ${f(rtt.native, 2)} ms | ${f(rtt.raw, 2)} ms | ${f(rtt.native / rtt.raw, 2)}× |`);
  out.push(`| throughput page → native, 400 × 16 KiB, median of 5 | ${f(tp16k.native)} MB/s | ${f(tp16k.raw)} MB/s | ${f(tp16k.native / tp16k.raw, 2)}× |`);
  out.push(`| throughput page → native, 24 × 1 MiB, median of 5 | ${f(tp1m.native)} MB/s | ${f(tp1m.raw)} MB/s | ${f(tp1m.native / tp1m.raw, 2)}× |`);
  out.push(`\nHTTP bootstrap (Provider.connectViaHttp, new Provider each, median of 7): linked ${f(boot.link)} ms, joined ${f(boot.join)} ms.`);
  out.push(`Native → native through JSON-RPC sendMessage (hex), median of 3: 400 × 16 KiB ${f(nn16k)} MB/s, 24 × 1 MiB ${f(nn1m)} MB/s.`);
  out.push(`Native memory: ${f((linked - idle) / Math.max(links, 1), 0)} KiB per link (${links} links from 16 Providers: RSS ${idle} → ${linked} KiB); ${f(((after - before) * 1024) / Math.max(records, 1), 0)} B per record (${records} records of 100 B: RSS ${before} → ${after} KiB, with the disk; ${f(putMs / 1000)} s for 10,000 puts, 16 at once).`);
} finally {
  await browser.close();
  a.stop();
  b.stop();
  server.close();
}
console.log(out.join("\n"));
