// Pages and native `rings` nodes in one ring, on loopback: a page bootstraps over HTTP
// (Provider.connectViaHttp) into a ring of two native nodes; messages, records and
// services cross between the page and the native nodes; 16 MiB page → native; two pages
// in two Chromium processes meet only through the native nodes, then link directly.
// Run by scripts/test.sh after the native build (target/debug/rings) and build-pkg.sh.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer } from "node:net";
import { serve } from "./server.mjs";
import { launch, openPage, runner } from "./chromium.mjs";
import { startNative, rpc } from "./native.mjs";

const server = await serve(0);
// A loopback port nothing listens on (bound, then closed).
const deadPort = await new Promise((ok) => { const s = createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => ok(p)); }); });
const base = `http://127.0.0.1:${server.address().port}`;
const { test, failures } = runner();

const a = await startNative("a");
const b = await startNative("b", [a.public]);
const browser = await launch();
const nodes = [a, b];

const waitFor = async (what, cond, ms = 20000) => {
  const t0 = Date.now();
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
};
// Native events since the last poll, kept per node.
const inbox = new Map(nodes.map((n) => [n, []]));
const poll = async (n) => {
  const ev = await rpc(n.api, "pollEvents", { max: 4096 });
  inbox.get(n).push(...ev.filter((e) => e.type === "message"));
  return inbox.get(n);
};
const big = (d) => BigInt(d);
const sortedDids = (dids) => [...dids].sort((x, y) => (big(x) < big(y) ? -1 : 1));
const ringOf = async (dids) => {
  // Every native node's successor and predecessor are the true ones.
  const all = sortedDids(dids);
  for (const n of nodes) {
    const i = await rpc(n.api, "nodeInfo", {});
    const k = all.findIndex((d) => d.toLowerCase() === n.did.toLowerCase());
    if (i.successor?.toLowerCase() !== all[(k + 1) % all.length].toLowerCase()) return false;
    if (i.predecessor?.toLowerCase() !== all[(k + all.length - 1) % all.length].toLowerCase()) return false;
  }
  return true;
};

try {
  await waitFor("the two native nodes to form a ring", () => ringOf([a.did, b.did]), 30000);

  const page = await openPage(browser, base);
  await page.evaluate(() => { window.H = null; });
  await page.evaluate(async () => { window.H = await import("/tests/browser/harness.js"); });

  await test("a page joins the native ring through Provider.connectViaHttp; bad URLs and dead nodes reject with typed errors", async () => {
    const r = await page.evaluate(async ([url, dead]) => {
      const p = await H.R.Provider.create({ account: await H.R.Account.generate() });
      window.p = p;
      const errors = [];
      for (const [u, o] of [["ftp://x", {}], [`http://127.0.0.1:${dead}/`, { timeoutMs: 3000 }], [url, { timeoutMs: -1 }]]) {
        try { await p.connectViaHttp(u, o); errors.push("resolved"); } catch (e) { errors.push(e.code); }
      }
      const t0 = performance.now();
      const via = await p.connectViaHttp(url);
      const linkMs = performance.now() - t0;
      await H.waitFor("joined", () => p.info().joined, 20000);
      return { via, linkMs, joinMs: performance.now() - t0, did: p.did, errors };
    }, [a.public, deadPort]);
    console.log(`      linked to the native node in ${r.linkMs.toFixed(0)} ms, joined in ${r.joinMs.toFixed(0)} ms`);
    assert.deepEqual(r.errors, ["BAD_ARGUMENT", "CONNECT_FAILED", "BAD_ARGUMENT"]);
    assert.equal(r.via.toLowerCase(), a.did.toLowerCase());
    globalThis.pageDid = r.did;
    await waitFor("the page in the native ring", () => ringOf([a.did, b.did, r.did]), 30000);
    const ok = await page.evaluate(async (dids) => {
      const s = dids.sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1)).map((d) => d.toLowerCase());
      const i = s.indexOf(p.did.toLowerCase());
      const info = p.info();
      return info.successor.toLowerCase() === s[(i + 1) % 3] && info.predecessor.toLowerCase() === s[(i + 2) % 3];
    }, [a.did, b.did, r.did]);
    assert.ok(ok, "the page's own successor and predecessor are right");
  });

  await test("messages both ways between the page and a native node (namespace chat)", async () => {
    await page.evaluate(() => { window.chat = []; p.client("chat").onMessage((m) => { chat.push({ text: m.text(), from: m.from }); }); });
    await page.evaluate((did) => p.client("chat").send(did, "hello native"), b.did);
    const got = await waitFor("the native node to hear the page", async () => (await poll(b)).find((m) => m.namespace === "chat"));
    assert.equal(got.text, "hello native");
    assert.equal(got.from.toLowerCase(), globalThis.pageDid.toLowerCase());
    await rpc(b.api, "sendMessage", { did: globalThis.pageDid, text: "hello page", namespace: "chat" });
    await rpc(a.api, "sendMessage", { did: globalThis.pageDid, text: "and from a", namespace: "chat" });
    const heard = await page.evaluate(async () => { await H.waitFor("two messages", () => chat.length >= 2, 10000); return chat; });
    assert.deepEqual(heard.map((m) => m.text).sort(), ["and from a", "hello page"]);
    assert.ok(heard.some((m) => m.from.toLowerCase() === b.did.toLowerCase()));
  });

  await test("records both ways: the page's put read by both native nodes, a native put read by the page", async () => {
    await page.evaluate(() => p.client("rings").put("from-page", "written by the page"));
    for (const n of nodes) {
      const r = await rpc(n.api, "get", { key: "from-page" });
      assert.equal(r?.text, "written by the page", JSON.stringify(r));
      assert.equal(r.writer.toLowerCase(), globalThis.pageDid.toLowerCase());
    }
    await rpc(a.api, "put", { key: "from-native", value: "written by a" });
    const v = await page.evaluate(async () => { const r = await p.client("rings").get("from-native"); return r && { text: new TextDecoder().decode(r.value), writer: r.writer }; });
    assert.deepEqual(v, { text: "written by a", writer: v.writer });
    assert.equal(v.writer.toLowerCase(), a.did.toLowerCase());
    // Namespaces stay apart.
    assert.equal(await page.evaluate(() => p.client("other").get("from-native")), null);
  });

  await test("a service registered by a native node is found by the page", async () => {
    await rpc(b.api, "registerService", { name: "printer" });
    const dids = await page.evaluate(() => p.client("rings").lookupService("printer"));
    assert.deepEqual(dids.map((d) => d.toLowerCase()), [b.did.toLowerCase()]);
  });

  await test("16 MiB from the page to a native node arrive intact", async () => {
    const n = 16 << 20;
    const ms = await page.evaluate(async ([did, n]) => {
      const t0 = performance.now();
      await p.client("bulk").send(did, H.pattern(n, 7));
      return performance.now() - t0;
    }, [a.did, n]);
    const t0 = Date.now();
    const got = await waitFor("16 MiB at the native node", async () => (await poll(a)).find((m) => m.namespace === "bulk"), 120000);
    // The oracle: the same pattern made here.
    const want = new Uint8Array(n);
    let x = 7;
    for (let i = 0; i < n; i++) { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; want[i] = x >>> 24; }
    const hash = (buf) => createHash("sha256").update(buf).digest("hex");
    assert.equal(got.bytes, n);
    assert.equal(hash(Buffer.from(got.data, "hex")), hash(want));
    console.log(`      handed over in ${ms.toFixed(0)} ms, seen by the native node ${Date.now() - t0} ms after`);
  });

  await test("16 MiB from a native node to the page arrive intact (the native send queue under str0m's 128 KiB)", async () => {
    const n = 16 << 20;
    let x = 11;
    const body = Buffer.alloc(n);
    for (let i = 0; i < n; i++) { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; body[i] = x >>> 24; }
    const want = createHash("sha256").update(body).digest("hex");
    await page.evaluate(() => { window.bulk = []; p.client("bulk-in").onMessage((m) => { bulk.push(m.data); }); });
    const t0 = Date.now();
    await rpc(b.api, "sendMessage", { did: globalThis.pageDid, hex: body.toString("hex"), namespace: "bulk-in" });
    const got = await page.evaluate(async () => {
      await H.waitFor("16 MiB from the native node", () => bulk.length === 1, 120000);
      const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bulk[0]));
      return { len: bulk[0].length, hash: Array.from(d, (v) => v.toString(16).padStart(2, "0")).join("") };
    });
    assert.deepEqual(got, { len: n, hash: want });
    console.log(`      sent and received in ${Date.now() - t0} ms (JSON-RPC hex included)`);
  });

  await test("two pages in two Chromium processes meet only through the native nodes, then link directly", async () => {
    const other = await launch();
    try {
      const page2 = await openPage(other, base);
      const r = await page2.evaluate(async ([url, did]) => {
        const H = await import("/tests/browser/harness.js");
        const q = await H.R.Provider.create({ account: await H.R.Account.generate() });
        window.q = q;
        await q.connectViaHttp(url);
        await H.waitFor("joined", () => q.info().joined, 20000);
        const t0 = performance.now();
        await q.connect(did);
        const connectMs = performance.now() - t0;
        return { connectMs, direct: q.peers().map((d) => d.toLowerCase()).includes(did.toLowerCase()), did: q.did };
      }, [b.public, globalThis.pageDid]);
      assert.ok(r.direct, "a direct link to the first page");
      console.log(`      connect(did) through the ring in ${r.connectMs.toFixed(0)} ms`);
      await page.evaluate(() => { window.direct = []; p.client("direct").onMessage((m) => { direct.push(m.text()); }); });
      await page2.evaluate((did) => q.client("direct").send(did, "across processes"), globalThis.pageDid);
      const heard = await page.evaluate(async () => { await H.waitFor("the message", () => direct.length === 1, 10000); return direct; });
      assert.deepEqual(heard, ["across processes"]);
      const linked = await page.evaluate((d) => p.peers().map((x) => x.toLowerCase()).includes(d.toLowerCase()), r.did);
      assert.ok(linked, "the first page sees the direct link too");
    } finally {
      await other.close();
    }
  });

  await test("the native nodes counted no bad frames from the pages", async () => {
    for (const n of nodes) {
      const info = await rpc(n.api, "nodeInfo", {});
      assert.equal(info.stats?.rejected ?? 0, 0, JSON.stringify(info.stats));
    }
  });
  // Last: it closes Providers that are in the ring (frames still on their way to them
  // are then refused, as they should be).
  await test("a reloaded Provider rejoins through the bootstrap URL it cached (no other tab, no URL given)", async () => {
    const r = await page.evaluate(async (url) => {
      const persist = `native-rejoin-${Math.random()}`;
      const account = await H.R.Account.generate();
      const first = await H.R.Provider.create({ account, persist });
      await first.connectViaHttp(url);
      const cached = await first.cachedBootstraps();
      await first.close();
      // As after a reload: a new Provider on the same IndexedDB cache, alone in its origin.
      const again = await H.R.Provider.create({ account: await H.R.Account.generate(), persist });
      const t0 = performance.now();
      const via = await again.rejoin({ channel: `none-${persist}`, timeoutMs: 300 });
      await H.waitFor("joined", () => again.info().joined, 20000);
      const ms = performance.now() - t0;
      await again.close();
      // Without a cache and without URLs it says so.
      const bare = await H.R.Provider.create({ account: await H.R.Account.generate() });
      const err = await bare.rejoin({ channel: `none-${persist}`, timeoutMs: 100 }).then(() => "resolved", (e) => e.code);
      const given = await bare.rejoin({ channel: `none-${persist}`, timeoutMs: 300, bootstrap: [url] });
      await bare.close();
      return { cached, via, ms, err, given };
    }, a.public);
    assert.deepEqual(r.cached, [a.public]);
    assert.equal(r.via.toLowerCase(), a.did.toLowerCase());
    assert.equal(r.err, "CONNECT_FAILED");
    assert.equal(r.given.toLowerCase(), a.did.toLowerCase());
    console.log(`      rejoined through the cached URL and joined in ${r.ms.toFixed(0)} ms (after 2 × 300 ms of tab offers)`);
  });

} finally {
  await browser.close();
  for (const n of nodes) n.stop();
  server.close();
}
if (failures() > 0) {
  console.log(`${failures()} native test(s) failed`);
  process.exit(1);
}
