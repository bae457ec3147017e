// Browser tests of the built package (pkg/), in Debian's headless Chromium with real
// RTCPeerConnections on loopback. Run by scripts/test.sh after scripts/build-pkg.sh.
import assert from "node:assert/strict";
import { serve } from "./server.mjs";
import { launch, openPage, runner } from "./chromium.mjs";

const server = await serve(0);
const base = `http://127.0.0.1:${server.address().port}`;
const browser = await launch();
// `ONLY=<text> node tests/browser/provider.test.mjs` runs only the tests whose name has it.
const { test, failures } = runner();

await test("six providers form a ring in one page; ring-signalled links; routed, encrypted messages; 16 MiB; a closed provider is repaired around", async () => {
  const page = await openPage(browser, base);
  const r = await page.evaluate(async () => {
    const H = await import("/tests/browser/harness.js");
    const ps = await H.providers(6);
    const log = [];
    // On failure: the step, what the origin heard back, every provider's counters.
    const undelivered = [];
    ps[0].on("undelivered", (u) => undelivered.push(`${u.reason} (tx ${u.tx})`));
    let step = "setup";
    const downs0 = [];
    const t00 = performance.now();
    ps.forEach((p, i) => p.on("peerDown", (d) => downs0.push(`${(performance.now() - t00).toFixed(0)} ms: ${i} lost ${ps.findIndex((q) => q.did === d.did)} (${d.reason}) during ${step}`)));
    const report = (e) => {
      const stats = ps.map((p, i) => `${i}: ${JSON.stringify(p.info().stats)} links [${p.peers().map((d) => ps.findIndex((q) => q.did === d))}] pending ${p.info().pending}`);
      return new Error(`${step}: ${e.message}\nundelivered at the origin: ${undelivered.join(", ") || "none"}\n${stats.join("\n")}\nlinks lost:\n${downs0.join("\n")}`);
    };
    try {
    // One manual handshake per newcomer, with the first provider; nothing else manual.
    step = "manual handshakes";
    for (let i = 1; i < 6; i++) await H.manual(ps[i], ps[0]);
    const ringMs = await H.waitFor("the ring to converge", () => H.ringCorrect(ps), 30000).catch((e) => {
      const sorted = ps.map((p) => p.did).sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1));
      const view = ps.map((p) => { const i = p.info(); return `${sorted.indexOf(p.did)}: succ ${sorted.indexOf(i.successor)} pred ${sorted.indexOf(i.predecessor)} links [${p.peers().map((d) => sorted.indexOf(d))}] pending ${i.pending}`; });
      throw new Error(`${e.message}\n${view.join("\n")}`);
    });
    log.push(`ring correct after ${ringMs.toFixed(0)} ms`);
    const trickled = ps.reduce((n, p) => n + p.info().stats.candidatesTrickled, 0);
    const received = ps.reduce((n, p) => n + p.info().stats.candidatesReceived, 0);
    log.push(`late candidates trickled through the ring ${trickled}, received ${received}`);
    const manualLinks = 5;
    const links = ps.reduce((n, p) => n + p.peers().length, 0) / 2;
    // connect(did) through the ring: the last provider links to the second.
    step = "connect(did)";
    const t0 = performance.now();
    await ps[5].connect(ps[1].did);
    const connectMs = performance.now() - t0;
    step = "message and request";
    // A message from the first to the last, through a Client.
    const inbox = [];
    ps[5].client("chat").onMessage((m) => { inbox.push(m); });
    const echo = ps[5].client("echo");
    echo.onMessage(async (m) => { await H.sleep(400); return "echo:" + m.text(); });
    await ps[0].client("chat").send(ps[5].did, "hello from the first");
    await H.waitFor("the message", () => inbox.length === 1, 10000);
    // While the request waits, a third provider answers it for the one asked: Reply
    // envelopes (magic 0xC1, kind 2, u32 id, namespace) for every id up to 200 (all a
    // sequential counter would have used). Only the asked peer's reply counts.
    const pendingReply = ps[0].client("echo").request(ps[5].did, "ping", { timeoutMs: 5000 });
    const ns = new TextEncoder().encode("echo");
    const forged = (id) => { const b = new Uint8Array(7 + ns.length + 6); b[0] = 0xc1; b[1] = 2; new DataView(b.buffer).setUint32(2, id); b[6] = ns.length; b.set(ns, 7); b.set(new TextEncoder().encode("forged"), 7 + ns.length); return b; };
    for (let id = 0; id <= 200; id++) ps[3].send(ps[0].did, forged(id));
    const reply = new TextDecoder().decode(await pendingReply);
    // 16 MiB, intact.
    step = "16 MiB";
    const body = H.pattern(16 << 20, 7);
    const got = [];
    ps[5].client("bulk").onMessage((m) => { got.push(m.data); });
    const b0 = performance.now();
    await ps[0].client("bulk").send(ps[5].did, body);
    await H.waitFor("16 MiB", () => got.length === 1, 60000);
    const bulkMs = performance.now() - b0;
    const intact = H.equal(got[0], body);
    // Close one provider that is neither the first nor the last; its neighbours notice.
    step = "close and repair";
    const victim = ps[3];
    const vDid = victim.did;
    const noticed = ps.filter((p) => p !== victim && p.peers().includes(vDid));
    const downs = new Map();
    const c0 = performance.now();
    for (const p of noticed) p.on("peerDown", (d) => { if (d.did === vDid && !downs.has(p.did)) downs.set(p.did, performance.now() - c0); });
    await victim.close();
    const live = ps.filter((p) => p !== victim);
    await H.waitFor("neighbours to notice", () => downs.size === noticed.length, 10000);
    const repairMs = await H.waitFor("the ring to repair", () => H.ringCorrect(live), 30000);
    // Messages to live peers keep arriving.
    const after = [];
    for (const p of live) p.client("after").onMessage((m) => { after.push(m.text()); });
    for (const p of live) await ps[0].client("after").send(p.did, "still " + p.did);
    await H.waitFor("messages after the repair", () => after.length === live.length, 10000);
    const info = ps[0].info();
    const first = ps[0].did;
    for (const p of live) await p.close();
    return { log, links, manualLinks, connectMs, inbox: inbox.map((m) => ({ text: m.text(), from: m.from, hops: m.hops })), first, reply, intact, bulkMs, downs: [...downs.values()], repairMs, after: after.length, live: live.length, info };
    } catch (e) {
      throw report(e);
    }
  });
  console.log("     ", r.log.join("; "), `| links ${r.links} (manual ${r.manualLinks}) | connect(did) ${r.connectMs.toFixed(1)} ms | 16 MiB in ${r.bulkMs.toFixed(0)} ms | close noticed in ${r.downs.map((x) => x.toFixed(0)).join("/")} ms, repaired ${r.repairMs.toFixed(0)} ms later`);
  assert.ok(r.links > r.manualLinks, `links were made through the ring: ${r.links}`);
  assert.deepEqual(r.inbox.map((m) => [m.text, m.from]), [["hello from the first", r.first]]);
  assert.equal(r.reply, "echo:ping");
  assert.ok(r.intact, "16 MiB intact");
  assert.ok(r.downs.every((ms) => ms < 5000), `noticed within 5 s: ${r.downs}`);
  assert.equal(r.after, r.live);
  assert.ok(r.info.stats.rejected === 0, JSON.stringify(r.info.stats));
  await page.close();
});

await test("24 providers, each bootstrapped through a random provider that has joined, 100 ms apart, form a correct ring within 30 s; a message from each to a random other arrives", async () => {
  const page = await openPage(browser, base);
  const seed = Date.now() % 1000000;
  const r = await page.evaluate(async (seed) => {
    const H = await import("/tests/browser/harness.js");
    const N = 24;
    let x = seed >>> 0;
    const rand = (n) => { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; return Math.floor((x / 4294967296) * n); };
    const ps = await H.providers(N);
    const joined = new Set([0]);
    const failures = [];
    ps.forEach((p, i) => {
      p.on("joined", () => joined.add(i));
      p.on("joinFailed", (e) => failures.push(`${i}: ${e.reason}`));
    });
    const via = [];
    const handshakes = [];
    for (let i = 1; i < N; i++) {
      const choices = [...joined].filter((j) => j < i);
      const v = choices[rand(choices.length)];
      via.push(v);
      handshakes.push(H.manual(ps[i], ps[v]).catch((e) => failures.push(`${i} via ${v}: handshake ${e.code ?? e.message}`)));
      await H.sleep(100);
    }
    await Promise.all(handshakes);
    const sorted = ps.map((p) => p.did).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
    const view = () => ps.map((p, k) => { const i = p.info(); return `${sorted.indexOf(p.did)} (#${k}, ${p.did}): joined ${i.joined} succ ${sorted.indexOf(i.successor)} pred ${sorted.indexOf(i.predecessor)} links ${p.peers().length}`; }).join("\n");
    const ringMs = await H.waitFor("the ring to converge", () => H.ringCorrect(ps), 30000).catch((e) => {
      throw new Error(`seed ${seed}, bootstrapped through ${via.join(",")}: ${e.message}; join failures: ${failures.join("; ") || "none"}\n${view()}`);
    });
    const inbox = ps.map(() => []);
    ps.forEach((p, i) => p.client("chat").onMessage((m) => { inbox[i].push(m.text()); }));
    const sent = [];
    for (let i = 0; i < N; i++) {
      let j = rand(N - 1);
      if (j >= i) j++;
      sent.push([i, j]);
      await ps[i].client("chat").send(ps[j].did, `from ${i}`);
    }
    await H.waitFor("every message", () => sent.every(([i, j]) => inbox[j].includes(`from ${i}`)), 15000).catch((e) => {
      const missing = sent.filter(([i, j]) => !inbox[j].includes(`from ${i}`)).map(([i, j]) => `${i}->${j}`);
      throw new Error(`seed ${seed}: ${e.message}: missing ${missing.join(" ")}`);
    });
    for (const p of ps) p.close();
    return { ringMs, failures: failures.length, seed, distinctVias: new Set(via).size };
  }, seed);
  console.log(`      seed ${r.seed}: ring correct ${r.ringMs.toFixed(0)} ms after the last handshake; ${r.distinctVias} distinct bootstrap providers; ${r.failures} join failures reported (each retried)`);
  await page.close();
});

await test("12 providers over 3 pages, each bootstrapped through a random provider that has joined (in any page), form a correct ring within 30 s; a message from each to a random other arrives", async () => {
  const pages = [await openPage(browser, base), await openPage(browser, base), await openPage(browser, base)];
  const seed = Date.now() % 1000000;
  let x = seed >>> 0;
  const rand = (n) => { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; return Math.floor((x / 4294967296) * n); };
  const N = 12;
  const where = (i) => [pages[i % 3], Math.floor(i / 3)]; // provider i lives in page i % 3
  for (const page of pages) {
    await page.evaluate(async () => {
      const H = await import("/tests/browser/harness.js");
      window.H = H;
      window.ps = await H.providers(4);
      window.joined = new Set();
      window.inbox = [];
      window.ps.forEach((p, k) => {
        p.on("joined", () => window.joined.add(k));
        p.client("chat").onMessage((m) => window.inbox.push(`${m.text()} to ${k}`));
      });
    });
  }
  const joined = async (i) => { const [pg, k] = where(i); return i === 0 || (await pg.evaluate((k) => window.joined.has(k), k)); };
  const via = [];
  for (let i = 1; i < N; i++) {
    const choices = [];
    for (let j = 0; j < i; j++) if (await joined(j)) choices.push(j);
    const v = choices[rand(choices.length)];
    via.push(v);
    const [pa, a] = where(i);
    const [pb, b] = where(v);
    const offer = await pa.evaluate((a) => window.ps[a].createOffer(), a);
    const answer = await pb.evaluate(([b, offer]) => window.ps[b].answerOffer(offer), [b, offer]);
    await pa.evaluate(([a, answer]) => window.ps[a].acceptAnswer(answer), [a, answer]);
    await new Promise((ok) => setTimeout(ok, 100));
  }
  const infos = async () => {
    const out = [];
    for (let i = 0; i < N; i++) {
      const [pg, k] = where(i);
      out.push(await pg.evaluate((k) => { const p = window.ps[k]; const i = p.info(); return { did: p.did, succ: i.successor, pred: i.predecessor, joined: i.joined }; }, k));
    }
    return out;
  };
  const correct = (all) => {
    const dids = all.map((p) => p.did).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
    return all.every((p) => { const i = dids.indexOf(p.did); return p.succ === dids[(i + 1) % N] && p.pred === dids[(i + N - 1) % N]; });
  };
  const t0 = Date.now();
  let all = await infos();
  while (!correct(all)) {
    if (Date.now() - t0 > 30000) {
      const dids = all.map((p) => p.did).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
      throw new Error(`seed ${seed}, through ${via.join(",")}: ring not correct after 30 s\n${all.map((p) => `${dids.indexOf(p.did)}: joined ${p.joined} succ ${dids.indexOf(p.succ)} pred ${dids.indexOf(p.pred)}`).join("\n")}`);
    }
    await new Promise((ok) => setTimeout(ok, 250));
    all = await infos();
  }
  const ringMs = Date.now() - t0;
  const expected = [];
  for (let i = 0; i < N; i++) {
    let j = rand(N - 1);
    if (j >= i) j++;
    const [pa, a] = where(i);
    const [, b] = where(j);
    expected.push([j, `from ${i} to ${b}`]);
    await pa.evaluate(([a, did, text]) => window.ps[a].client("chat").send(did, text), [a, all[j].did, `from ${i}`]);
  }
  const t1 = Date.now();
  for (;;) {
    let missing = [];
    for (const [j, text] of expected) {
      const [pg] = where(j);
      if (!(await pg.evaluate((t) => window.inbox.includes(t), text))) missing.push(text);
    }
    if (missing.length === 0) break;
    if (Date.now() - t1 > 15000) throw new Error(`seed ${seed}: messages missing: ${missing.join("; ")}`);
    await new Promise((ok) => setTimeout(ok, 200));
  }
  console.log(`      seed ${seed}: ring over 3 pages correct ${ringMs} ms after the last handshake; ${N} messages arrived`);
  for (const pg of pages) await pg.close();
});

await test("two providers in two pages connect by a pasted offer and exchange messages", async () => {
  const [a, b] = [await openPage(browser, base), await openPage(browser, base)];
  const setup = async () => {
    const H = await import("/tests/browser/harness.js");
    window.P = await H.R.Provider.create({ account: await H.R.Account.generate() });
    window.inbox = [];
    window.P.client("chat").onMessage((m) => { window.inbox.push(m.text()); });
    return window.P.did;
  };
  const [da, db] = [await a.evaluate(setup), await b.evaluate(setup)];
  const offer = await a.evaluate(() => window.P.createOffer());
  const answer = await b.evaluate((o) => window.P.answerOffer(o), offer);
  assert.equal(await a.evaluate((x) => window.P.acceptAnswer(x), answer), db);
  await a.evaluate((to) => window.P.client("chat").send(to, "hi from page A"), db);
  await b.evaluate((to) => window.P.client("chat").send(to, "hi from page B"), da);
  const wait = (p) => p.evaluate(async () => { const H = await import("/tests/browser/harness.js"); await H.waitFor("a message", () => window.inbox.length > 0, 10000); return window.inbox; });
  assert.deepEqual(await wait(b), ["hi from page A"]);
  assert.deepEqual(await wait(a), ["hi from page B"]);
  // Closing page B is noticed by A.
  const down = a.evaluate(() => new Promise((ok) => { const t0 = performance.now(); window.P.on("peerDown", () => ok(performance.now() - t0)); }));
  await b.close();
  const ms = await down;
  console.log(`      page close noticed in ${ms.toFixed(0)} ms`);
  assert.ok(ms < 10000);
  await a.close();
});

await test("a link signalled through the ring opens with every ICE candidate trickled after the offer and answer", async () => {
  const page = await openPage(browser, base);
  const r = await page.evaluate(async () => {
    const H = await import("/tests/browser/harness.js");
    // Ring-signalled offers and answers leave before any candidate: all of them trickle.
    const make = async () => H.R.Provider.create({ account: await H.R.Account.generate(), ringCandidateWaitMs: 0 });
    const [x, y, z] = [await make(), await make(), await make()];
    await H.manual(y, x);
    await H.manual(z, x);
    await H.waitFor("ring of three", () => H.ringCorrect([x, y, z]), 20000);
    if (z.peers().includes(y.did)) z.disconnect(y.did);
    await H.sleep(50);
    const t0 = performance.now();
    await z.connect(y.did);
    const ms = performance.now() - t0;
    const got = [];
    y.client("t").onMessage((m) => { got.push(m.text()); });
    await z.client("t").send(y.did, "over a trickled link");
    await H.waitFor("the message", () => got.length === 1, 5000);
    const after = [y, z].map((p) => p.info().stats);
    const linked = z.peers().includes(y.did);
    // Links dropped while their offer is out (delivered, so never reported undelivered)
    // leave no signal behind: once nothing is pending, nothing is in flight.
    for (let i = 0; i < 10; i++) {
      z.disconnect(y.did);
      z.connect(y.did).catch(() => undefined);
      await H.sleep(5);
      z.disconnect(y.did);
    }
    await H.waitFor("no pending connection", () => z.info().pending === 0, 10000);
    const leaked = z.info().stats.signalsInFlight;
    const out = {
      ms,
      leaked,
      linked,
      // Since the start: y and z link only through the ring (their links to x are manual).
      sent: after[0].candidatesTrickled + after[1].candidatesTrickled,
      received: after[0].candidatesReceived + after[1].candidatesReceived,
      got,
    };
    for (const p of [x, y, z]) await p.close();
    return out;
  });
  console.log(`      connect(did) in ${r.ms.toFixed(1)} ms with ${r.sent} candidates trickled, ${r.received} received`);
  assert.ok(r.linked, "z linked to y");
  assert.equal(r.leaked, 0, "signals of dropped links are forgotten");
  assert.ok(r.sent >= 2 && r.received >= 2, `candidates went through the ring both ways: ${r.sent} sent, ${r.received} received`);
  assert.deepEqual(r.got, ["over a trickled link"]);
  await page.close();
});

await test("the DHT in the browser: a record put by the first of six Providers is read by the last, survives its holder's close; services are found; bad writes are refused", async () => {
  const page = await openPage(browser, base);
  const r = await page.evaluate(async () => {
    const H = await import("/tests/browser/harness.js");
    const ps = await H.providers(6);
    for (let i = 1; i < 6; i++) await H.manual(ps[i], ps[0]);
    await H.waitFor("the ring to converge", () => H.ringCorrect(ps), 30000);
    const out = {};
    const t0 = performance.now();
    await ps[0].client("kv").put("greeting", "hello from the first", { ttlMs: 600000 });
    out.putMs = performance.now() - t0;
    const t1 = performance.now();
    const got = await ps[5].client("kv").get("greeting");
    out.getMs = performance.now() - t1;
    out.got = got && new TextDecoder().decode(got.value);
    out.writerOk = got?.writer === ps[0].did;
    // Another namespace does not see it; an unknown key is null.
    out.otherNs = await ps[5].client("other").get("greeting");
    out.missing = await ps[5].client("kv").get("never written");
    // Only the writer may overwrite; the writer may.
    out.notOwner = await ps[3].client("kv").put("greeting", "mine now").then(() => "stored", (e) => e.code);
    await ps[0].client("kv").put("greeting", "v2", { ttlMs: 600000 });
    out.v2 = new TextDecoder().decode((await ps[4].client("kv").get("greeting")).value);
    out.tooLarge = await ps[0].client("kv").put("big", new Uint8Array(16385)).then(() => "stored", (e) => e.code);
    // Close the key's owner (not the writer or the reader): the record is still readable.
    await H.sleep(2500); // a replication push
    const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");
    const keyBytes = new Uint8Array([2, ...new TextEncoder().encode("kv"), 118, ...new TextEncoder().encode("greeting")]);
    const key = "0x" + hex(await crypto.subtle.digest("SHA-1", keyBytes));
    const sorted = ps.map((p) => p.did).sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1));
    const ownerDid = sorted.find((d) => BigInt(d) >= BigInt(key)) ?? sorted[0];
    const owner = ps.find((p) => p.did === ownerDid);
    out.ownerIsEnd = owner === ps[0] || owner === ps[5];
    const live = ps.filter((p) => p !== owner);
    await owner.close();
    await H.waitFor("the ring to repair", () => H.ringCorrect(live), 30000);
    const reader = live[live.length - 1];
    out.afterClose = new TextDecoder().decode((await reader.client("kv").get("greeting"))?.value ?? new Uint8Array());
    // Services: two providers register, a third finds both.
    await live[0].client("app").registerService("chat");
    await live[1].client("app").registerService("chat");
    out.service = (await live[2].client("app").lookupService("chat")).sort();
    out.serviceWant = [live[0].did, live[1].did].sort();
    out.noService = await live[2].client("app").lookupService("nobody");
    for (const p of live) await p.close();
    return out;
  });
  console.log(`      put ${r.putMs.toFixed(1)} ms, get ${r.getMs.toFixed(1)} ms (first put/get open links to the key's owner)`);
  assert.equal(r.got, "hello from the first");
  assert.ok(r.writerOk, "the writer is the first provider's account");
  assert.equal(r.otherNs, null);
  assert.equal(r.missing, null);
  assert.equal(r.notOwner, "NOT_OWNER");
  assert.equal(r.v2, "v2");
  assert.equal(r.tooLarge, "TOO_LARGE");
  assert.equal(r.afterClose, "v2", "readable after its owner closed");
  assert.deepEqual(r.service, r.serviceWant);
  assert.deepEqual(r.noService, []);
  await page.close();
});

await test("a reloaded page rejoins the ring from its IndexedDB peer cache without a manual handshake, and republishes its kept records", async () => {
  // One browser context: the pages share an origin's BroadcastChannel and IndexedDB.
  const ctx = await browser.newContext();
  const [a, b] = [await openPage(ctx, base), await openPage(ctx, base)];
  const da = await a.evaluate(async () => {
    const H = await import("/tests/browser/harness.js");
    window.P = await H.R.Provider.create({ account: await H.R.Account.generate() });
    window.P.shareLocally("rings-test"); // answers same-origin offers addressed to it
    return window.P.did;
  });
  const start = () => b.evaluate(async () => {
    const H = await import("/tests/browser/harness.js");
    window.P = await H.R.Provider.create({ account: await H.R.Account.generate(), persist: "page-b" });
    return { did: window.P.did, cached: await window.P.cachedPeers() };
  });
  const first = await start();
  assert.deepEqual(first.cached, [], "a fresh cache");
  // The one manual handshake, B with A; B registers a service it keeps alive.
  const offer = await b.evaluate(() => window.P.createOffer());
  const answer = await a.evaluate((o) => window.P.answerOffer(o), offer);
  assert.equal(await b.evaluate((x) => window.P.acceptAnswer(x), answer), da);
  await b.evaluate(async () => {
    const H = await import("/tests/browser/harness.js");
    await H.waitFor("joined", () => window.P.info().joined, 10000);
    await window.P.client("app").registerService("page-b");
    await H.waitFor("the peer cache", async () => (await window.P.cachedPeers()).length === 1, 5000);
  });
  await b.reload();
  const second = await start();
  assert.notEqual(second.did, first.did, "a new account after the reload");
  assert.deepEqual(second.cached, [da], "the peer cache survived the reload");
  const r = await b.evaluate(async () => {
    const H = await import("/tests/browser/harness.js");
    const t0 = performance.now();
    const peer = await window.P.rejoin({ channel: "rings-test" });
    const ms = performance.now() - t0;
    await H.waitFor("joined again", () => window.P.info().joined, 10000);
    return { peer, ms };
  });
  assert.equal(r.peer, da, "rejoined through the cached peer");
  // The kept service record was republished by the new Provider: A finds it.
  const found = await a.evaluate(async (did) => {
    const H = await import("/tests/browser/harness.js");
    let dids = [];
    await H.waitFor("the republished service", async () => (dids = await window.P.client("app").lookupService("page-b")).includes(did), 10000, 100);
    return dids;
  }, second.did);
  console.log(`      rejoined through the cached peer in ${r.ms.toFixed(0)} ms; service found: ${found.length} registration(s)`);
  await ctx.close();
});

await test("the example app (the main job's page): two tabs find each other, exchange a message and share a record", async () => {
  const ctx = await browser.newContext();
  const open = async () => {
    const p = await ctx.newPage();
    p.on("pageerror", (e) => console.error("[page error]", e.message));
    await p.goto(`${base}/examples/web/`);
    await p.waitForFunction(() => document.getElementById("did").textContent.startsWith("0x"));
    return p;
  };
  const a = await open();
  const b = await open();
  const linked = (p) => p.waitForFunction(() => document.getElementById("peers").textContent.startsWith("0x"), null, { timeout: 15000 });
  await Promise.all([linked(a), linked(b)]);
  const didB = await b.evaluate(() => document.getElementById("did").textContent);
  await a.fill("#to", didB);
  await a.fill("#text", "hello tab B");
  await a.click("#send");
  await b.waitForFunction(() => document.getElementById("log").textContent.includes("hello tab B"), null, { timeout: 10000 });
  await a.fill("#key", "shared");
  await a.fill("#value", "from tab A");
  await a.click("#put");
  await a.waitForFunction(() => document.getElementById("log").textContent.includes("stored shared"), null, { timeout: 10000 });
  await b.fill("#key", "shared");
  await b.click("#get");
  await b.waitForFunction(() => document.getElementById("log").textContent.includes("shared = from tab A"), null, { timeout: 10000 });
  await ctx.close();
});

await test("1,000 connect / disconnect cycles leave no live connection, handler or listener behind; closed connections are collectable", async () => {
  const page = await openPage(browser, base);
  const cycles = Number(process.env.CYCLES ?? 1000);
  const r = await page.evaluate(async (cycles) => {
    // Every RTCPeerConnection and data channel the package makes is recorded, weakly: the
    // test must not keep them alive. Chromium refuses a 501st live connection in a page,
    // so closed connections must also be collectable — retained by nothing.
    const pcs = [], dcs = [];
    let listeners = 0;
    const Raw = window.RTCPeerConnection;
    class Tracked extends Raw {
      constructor(...a) { super(...a); pcs.push(new WeakRef(this)); }
      createDataChannel(...a) { const dc = super.createDataChannel(...a); dcs.push(new WeakRef(dc)); return dc; }
      addEventListener(...a) { listeners++; return super.addEventListener(...a); }
      removeEventListener(...a) { listeners--; return super.removeEventListener(...a); }
    }
    window.RTCPeerConnection = Tracked;
    const PC_ON = ["onicecandidate", "onicecandidateerror", "oniceconnectionstatechange", "onicegatheringstatechange", "onconnectionstatechange", "onsignalingstatechange", "ondatachannel", "onnegotiationneeded", "ontrack"];
    const DC_ON = ["onopen", "onclose", "onclosing", "onmessage", "onerror", "onbufferedamountlow"];
    const set = (o, keys) => keys.filter((k) => o[k]).length;
    const H = await import("/tests/browser/harness.js");
    const [a, b] = await H.providers(2);
    const open = (p) => p.info().connections + p.info().pending;
    const snapshot = async (i) => {
      for (let k = 0; k < 3; k++) { window.gc(); await H.sleep(20); }
      const alivePcs = pcs.map((w) => w.deref()).filter(Boolean);
      const aliveDcs = dcs.map((w) => w.deref()).filter(Boolean);
      return {
        cycle: i + 1,
        created: pcs.length,
        retained: alivePcs.length,
        live: alivePcs.filter((pc) => pc.signalingState !== "closed").length,
        // Handlers still attached to closed connections and channels: what a leak would hold.
        handlers: alivePcs.filter((pc) => pc.signalingState === "closed").reduce((n, pc) => n + set(pc, PC_ON), 0)
          + aliveDcs.filter((dc) => dc.readyState === "closed").reduce((n, dc) => n + set(dc, DC_ON), 0),
        listeners,
        open: open(a) + open(b),
      };
    };
    const marks = [];
    let ms = 0;
    for (let i = 0; i < cycles; i++) {
      const t0 = performance.now();
      await H.manual(a, b);
      await H.waitFor("the link", () => a.peers().length === 1 && b.peers().length === 1, 10000, 1);
      a.disconnect(b.did);
      await H.waitFor("the far side to notice", () => open(a) === 0 && open(b) === 0, 10000, 1);
      ms += performance.now() - t0;
      if ((i + 1) % 100 === 0 || i === 9 || i === cycles - 1) marks.push(await snapshot(i));
    }
    await a.close();
    await b.close();
    const oursAt = pcs.map((w, i) => (w.deref() ? i >> 1 : -1)).filter((i) => i >= 0);
    // The control: bare RTCPeerConnections in the same page — a pair, a data channel,
    // offer and answer with trickled candidates, open, close, every handler unset, no
    // reference kept. 200 cycles: a quarter or more of them stay reachable for good,
    // and Chromium refuses a 501st connection not collected.
    const raw = [];
    const t1 = performance.now();
    const control = Math.min(cycles, 200);
    for (let i = 0; i < control; i++) {
      let x = new Raw(), y = new Raw();
      raw.push(new WeakRef(x), new WeakRef(y));
      const dc = x.createDataChannel("control");
      const opened = new Promise((res) => { dc.onopen = res; });
      const arrived = new Promise((res) => { y.ondatachannel = (e) => { e.channel.onopen = () => res(e.channel); }; });
      // Candidates trickle straight across, held until the far side has a description.
      const early = new Map([[x, []], [y, []]]);
      const trickle = (to) => (e) => { if (e.candidate) (to.remoteDescription ? to.addIceCandidate(e.candidate) : early.get(to).push(e.candidate)); };
      x.onicecandidate = trickle(y);
      y.onicecandidate = trickle(x);
      await x.setLocalDescription();
      await y.setRemoteDescription(x.localDescription);
      for (const c of early.get(y).splice(0)) await y.addIceCandidate(c);
      await y.setLocalDescription();
      await x.setRemoteDescription(y.localDescription);
      for (const c of early.get(x).splice(0)) await x.addIceCandidate(c);
      const ch = await arrived;
      await opened;
      ch.onopen = null;
      dc.onopen = null;
      x.onicecandidate = y.onicecandidate = y.ondatachannel = null;
      x.close();
      y.close();
      x = y = null;
      if ((i + 1) % 100 === 0 || i === 9) for (let k = 0; k < 3; k++) { window.gc(); await H.sleep(20); }
    }
    const rawMs = performance.now() - t1;
    for (let k = 0; k < 3; k++) { window.gc(); await H.sleep(20); }
    const rawAt = raw.map((w, i) => (w.deref() ? i >> 1 : -1)).filter((i) => i >= 0);
    // Neither kind is released later: what is reachable now stays so.
    await H.sleep(1000);
    for (let k = 0; k < 3; k++) { window.gc(); await H.sleep(20); }
    const settled = [pcs.filter((w) => w.deref()).length, raw.filter((w) => w.deref()).length];
    return { marks, ms, rawMs, control, oursAt, rawAt, settled };
  }, cycles);
  const early = r.marks[0], last = r.marks[r.marks.length - 1];
  const retained = r.marks.map((m) => m.retained);
  console.log(`      ${cycles} cycles in ${(r.ms / 1000).toFixed(1)} s (${(r.ms / cycles).toFixed(1)} ms each); connections still reachable after GC, every 100 cycles: ${retained.join(" ")}; at the end: ${JSON.stringify(last)}`);
  const ours = r.oursAt.length / (2 * cycles), bare = r.rawAt.length / (2 * r.control);
  console.log(`      still reachable after GC: ours ${r.oursAt.length} of ${2 * cycles} (${(100 * ours).toFixed(1)}%), by cycle [${r.oursAt.join(" ")}]; bare RTCPeerConnections (the control, ${r.control} cycles, ${(r.rawMs / r.control).toFixed(1)} ms each) ${r.rawAt.length} of ${2 * r.control} (${(100 * bare).toFixed(1)}%); 1 s later: ${r.settled.join(" and ")}`);
  assert.equal(last.created, 2 * cycles, "two connections per cycle");
  for (const m of r.marks) {
    assert.equal(m.live, 0, `no connection left open (cycle ${m.cycle})`);
    assert.equal(m.handlers, 0, `no handler left on a closed connection or channel (cycle ${m.cycle})`);
    assert.equal(m.open, 0, `the providers hold no connection (cycle ${m.cycle})`);
    assert.ok(m.retained <= Math.max(20, m.created / 20), `closed connections are collectable (cycle ${m.cycle}: ${m.retained} of ${m.created} still reachable)`);
  }
  // Some closed connections stay reachable after GC for good, with no handler left and
  // nothing of ours referring to them: bare RTCPeerConnections in the same page, closed
  // the same way with nothing else around them, stay reachable in a larger share (15–27%
  // against our 0.8–1.5% on an idle machine; with its other core busy, 13% of ours).
  // Chromium's own, then. The bounds: no larger share than the control's (a leak of ours,
  // every connection kept, would exceed it, and Chromium would refuse the 501st),
  // and at most 5% (0.8–1.5% measured) whatever the control does.
  assert.ok(ours <= bare, `closed connections are collectable: ${r.oursAt.length} of ${2 * cycles} still reachable, a larger share than bare RTCPeerConnections' (${r.rawAt.length} of ${2 * r.control})`);
  assert.ok(ours <= 0.05, `closed connections are collectable: ${r.oursAt.length} of ${2 * cycles} still reachable`);
  assert.equal(last.listeners, early.listeners, "no listener growth");
  await page.close();
});

await test("a hard connection cap: a bootstrap over it is refused while every link is young; later the least recently used link goes, never the ring's successor or predecessor", async () => {
  const page = await openPage(browser, base);
  const r = await page.evaluate(async () => {
    const H = await import("/tests/browser/harness.js");
    const capped = await H.R.Provider.create({ account: await H.R.Account.generate(), maxConnections: 3 });
    const ps = [capped, ...(await H.providers(5))];
    const evicted = [];
    capped.on("peerDown", (d) => { if (d.reason.startsWith("connection limit")) evicted.push(d.did); });
    const downs = [];
    const t00 = performance.now();
    ps.forEach((p, i) => p.on("peerDown", (d) => downs.push(`${(performance.now() - t00).toFixed(0)} ms: ${i} lost ${ps.findIndex((q) => q.did === d.did)} (${d.reason})`)));
    ps.forEach((p, i) => p.on("peerUp", (d) => downs.push(`${(performance.now() - t00).toFixed(0)} ms: ${i} up ${ps.findIndex((q) => q.did === d.did)}`)));
    // Open and opening connections, sampled every 5 ms for the whole test.
    const count = () => capped.info().connections + capped.info().pending;
    let most = 0;
    const sampler = setInterval(() => { most = Math.max(most, count()); }, 5);
    // Three newcomers bootstrap through the capped provider: it is full of young links.
    for (let i = 1; i < 4; i++) await H.manual(ps[i], capped);
    // A fourth is refused (every link is younger than the grace): BUSY, nothing closed.
    let refused = "accepted";
    try { await H.manual(ps[4], capped); } catch (e) { refused = e.code; }
    const evictedYoung = evicted.length;
    // The others bootstrap elsewhere, and the first three get a second manual link each:
    // a newcomer whose only link is evicted by a full peer is cut off until it
    // bootstraps again (README, Known weaknesses; 2 runs in 9 before this).
    for (let i = 4; i < 6; i++) await H.manual(ps[i], ps[1]);
    for (let i = 2; i < 4; i++) await H.manual(ps[i], ps[4]);
    await H.manual(ps[1], ps[5]);
    // 60 s, not the 30 s of the uncapped rings: while the capped provider's three links
    // are young it cannot take its true neighbours' offers, and a refused offer costs its
    // offerer the whole connect timeout (10 s) before the ring tries again (README, Known
    // weaknesses).
    const ringMs = await H.waitFor("the ring to converge", () => H.ringCorrect(ps), 60000).catch((e) => {
      const sorted = ps.map((p) => p.did).sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1));
      const view = ps.map((p, k) => { const i = p.info(); return `${k}=${sorted.indexOf(p.did)}: succ ${sorted.indexOf(i.successor)} pred ${sorted.indexOf(i.predecessor)} links [${p.peers().map((d) => sorted.indexOf(d))}] pending ${i.pending}`; });
      throw new Error(`${e.message}\n${view.join("\n")}\nevicted ${evicted.length}\n${downs.join("\n")}`);
    });
    await H.sleep(5200); // past the grace period
    // A new link makes room: the least recently used old link goes.
    // (Under a hard cap a connect fails while every link is protected, young or opening —
    // ring maintenance keeps opening links to fingers — so it is tried until there is room.)
    const unlinked = ps.slice(1).filter((p) => !capped.peers().includes(p.did));
    const target = unlinked[0] ?? ps[5];
    let tries = 0;
    for (;;) {
      tries++;
      try { await capped.connect(target.did); break; } catch (e) {
        if (e.code !== "CONNECT_FAILED" || tries > 40) throw e;
        await H.sleep(250);
      }
    }
    const info = capped.info();
    const neighbours = [info.successor, info.predecessor].every((d) => capped.peers().includes(d));
    // The ring stays correct and messages from the capped provider reach everyone.
    await H.waitFor("the ring after eviction", () => H.ringCorrect(ps), 30000);
    const got = [];
    for (const p of ps.slice(1)) p.client("cap").onMessage((m) => { got.push(m.text()); });
    for (const p of ps.slice(1)) await capped.client("cap").send(p.did, "to " + p.did);
    await H.waitFor("every message", () => got.length === 5, 10000);
    clearInterval(sampler);
    for (const p of ps) await p.close();
    return { refused, evictedYoung, most, evicted: evicted.length, neighbours, got: got.length, tries, ringMs };
  });
  console.log(`      cap 3: at most ${r.most} connections held; a 4th bootstrap ${r.refused}; ring correct after ${r.ringMs.toFixed(0)} ms; ${r.evicted} evicted once old; connect took ${r.tries} tries`);
  assert.equal(r.refused, "BUSY", "a bootstrap over a cap of young links is refused");
  assert.equal(r.evictedYoung, 0, "no young link was evicted");
  assert.ok(r.most <= 3, `the cap is never exceeded: ${r.most}`);
  assert.ok(r.evicted >= 1, "the cap closed a link once they were old");
  assert.ok(r.neighbours, "successor and predecessor stay linked");
  assert.equal(r.got, 5);
  await page.close();
});

await test("wrong arguments reject with typed errors, never a wasm trap", async () => {
  const page = await openPage(browser, base);
  const codes = await page.evaluate(async () => {
    const H = await import("/tests/browser/harness.js");
    const p = await H.R.Provider.create({ account: await H.R.Account.generate() });
    const code = async (f) => { try { await f(); return "no error"; } catch (e) { return `${e instanceof H.R.RingsError}:${e.code}`; } };
    const out = {
      badDid: await code(() => p.send("0x12", new Uint8Array(1))),
      badData: await code(() => p.send(p.did, "text")),
      badOffer: await code(() => p.answerOffer("rings1.AAAA")),
      garbageOffer: await code(() => p.answerOffer("hello")),
      answerAsOffer: await code(async () => { const o = await p.createOffer(); return p.acceptAnswer(o); }),
      badKey: await code(() => H.R.Account.fromPrivateKey(new Uint8Array(31))),
      zeroKey: await code(() => H.R.Account.fromPrivateKey(new Uint8Array(32))),
      badAccount: await code(() => H.R.Provider.create({ account: {} })),
      connectSelf: await code(() => p.connect(p.did)),
      request: await code(() => p.client("x").request(H.R.Account ? "0x0000000000000000000000000000000000000001" : "", "hi", { timeoutMs: 300 })),
    };
    await p.close();
    out.afterClose = await code(() => p.createOffer());
    return out;
  });
  assert.deepEqual(codes, {
    badDid: "true:BAD_DID", badData: "true:BAD_ARGUMENT", badOffer: "true:BAD_OFFER", garbageOffer: "true:BAD_OFFER",
    answerAsOffer: "true:BAD_ANSWER", badKey: "true:BAD_ARGUMENT", zeroKey: "true:BAD_ARGUMENT", badAccount: "true:BAD_ARGUMENT",
    connectSelf: "true:BAD_ARGUMENT", request: "true:UNDELIVERED", afterClose: "true:CLOSED",
  });
  await page.close();
});

await test("a failed initialize() is not kept: it rejects with a WASM RingsError and a hint, and a later call loads; no RTCPeerConnection fails Provider.create with WEBRTC", async () => {
  const page = await openPage(browser, base);
  const r = await page.evaluate(async () => {
    const R = await import("/pkg/dist/index.js");
    const fail = async (f) => { try { await f(); return { ok: true }; } catch (e) { return { rings: e instanceof R.RingsError, code: e.code, message: String(e.message) }; } };
    const garbage = await fail(() => R.initialize(new Uint8Array([1, 2, 3, 4])));
    // What a bundler's dev server does when it rewrites the wasm path: HTML.
    const html = await fail(() => R.initialize(new Response("<!doctype html><html></html>", { headers: { "content-type": "text/html" } })));
    const missing = await fail(() => R.initialize(new URL("/no-such.wasm", location.href)));
    const good = await fail(() => R.initialize());
    const account = await fail(() => R.Account.generate());
    // A service worker has no RTCPeerConnection; nor has this page for a moment.
    const saved = globalThis.RTCPeerConnection;
    delete globalThis.RTCPeerConnection;
    const noRtc = await fail(async () => R.Provider.create({ account: await R.Account.generate() }));
    globalThis.RTCPeerConnection = saved;
    const after = await fail(async () => (await R.Provider.create({ account: await R.Account.generate() })).close());
    return { garbage, html, missing, good, account, noRtc, after };
  });
  for (const k of ["garbage", "html", "missing"]) {
    assert.equal(r[k].rings, true, `${k}: ${JSON.stringify(r[k])}`);
    assert.equal(r[k].code, "WASM", `${k}: ${JSON.stringify(r[k])}`);
  }
  assert.match(r.html.message, /answered the \.wasm request with HTML.*optimizeDeps/, r.html.message);
  assert.match(r.missing.message, /could not be fetched|pass its URL/, r.missing.message);
  assert.deepEqual([r.good, r.account, r.after], [{ ok: true }, { ok: true }, { ok: true }], "a later initialize() loads");
  assert.equal(r.noRtc.code, "WEBRTC", JSON.stringify(r.noRtc));
  assert.match(r.noRtc.message, /offscreen document/, r.noRtc.message);
  await page.close();
});

await browser.close();
server.close();
if (failures()) {
  console.log(`${failures()} browser test(s) failed`);
  process.exit(1);
}
console.log("all browser tests passed");
