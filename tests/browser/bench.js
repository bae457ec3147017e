// In-page benchmark: rings-node Providers against a raw RTCDataChannel pair, same page.
import * as H from "/tests/browser/harness.js";
const { R } = H;

export const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

export async function rawPair() {
  const t0 = performance.now();
  const a = new RTCPeerConnection(), b = new RTCPeerConnection();
  a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
  const ca = a.createDataChannel("x", { negotiated: true, id: 0 });
  const cb = b.createDataChannel("x", { negotiated: true, id: 0 });
  ca.binaryType = cb.binaryType = "arraybuffer";
  await a.setLocalDescription();
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription();
  await a.setRemoteDescription(b.localDescription);
  await Promise.all([ca, cb].map((c) => new Promise((ok) => (c.readyState === "open" ? ok() : (c.onopen = ok)))));
  return { ms: performance.now() - t0, a, b, ca, cb, close: () => { a.close(); b.close(); } };
}

export async function rawRtt(p, n) {
  p.cb.onmessage = (e) => p.cb.send(e.data);
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await new Promise((ok) => { p.ca.onmessage = ok; p.ca.send(new Uint8Array(32)); });
    out.push(performance.now() - t);
  }
  return median(out);
}

export async function rawThroughput(p, size, count) {
  const msg = new Uint8Array(size);
  const chunk = 64 << 10;
  let got = 0;
  const total = size * count;
  const done = new Promise((ok) => { p.cb.onmessage = (e) => { got += e.data.byteLength; if (got >= total) ok(); }; });
  p.ca.bufferedAmountLowThreshold = 1 << 20;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    for (let off = 0; off < size; off += chunk) {
      if (p.ca.bufferedAmount > 4 << 20) await new Promise((ok) => (p.ca.onbufferedamountlow = ok));
      p.ca.send(msg.subarray(off, Math.min(size, off + chunk)));
    }
  }
  await done;
  return total / ((performance.now() - t0) / 1000) / 1e6;
}

async function ringPair() {
  const [a, b] = await H.providers(2);
  const t0 = performance.now();
  await H.manual(a, b);
  const ms = performance.now() - t0;
  return { a, b, ms };
}

async function ringRtt(p, n) {
  p.b.client("rtt").onMessage((m) => m.data);
  const c = p.a.client("rtt");
  await c.request(p.b.did, new Uint8Array(32)); // session opening
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await c.request(p.b.did, new Uint8Array(32));
    out.push(performance.now() - t);
  }
  return median(out);
}

async function ringThroughput(p, size, count, round) {
  let got = 0;
  const total = size * count;
  const ns = `tp${size}.${round}`;
  const done = new Promise((ok) => p.b.client(ns).onMessage((m) => { got += m.data.length; if (got >= total) ok(); }));
  const msg = new Uint8Array(size);
  const c = p.a.client(ns);
  await c.send(p.b.did, new Uint8Array(1)); got -= 1; // session opening
  await H.sleep(50);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await c.send(p.b.did, msg);
  await done;
  return total / ((performance.now() - t0) / 1000) / 1e6;
}

/** The DHT among six Providers in this page: sequential put and get latency (links to
 * the owners already open after a warm-up), and concurrent puts per second. */
async function storeBench() {
  const ps = await H.providers(6);
  for (let i = 1; i < 6; i++) await H.manual(ps[i], ps[0]);
  await H.waitFor("ring of six", () => H.ringCorrect(ps), 30000);
  const w = ps[0].client("bench"), r = ps[5].client("bench");
  const value = new Uint8Array(100);
  for (let i = 0; i < 20; i++) { await w.put(`warm-${i}`, value); await r.get(`warm-${i}`); }
  const puts = [], gets = [];
  for (let i = 0; i < 100; i++) { const t = performance.now(); await w.put(`k-${i}`, value); puts.push(performance.now() - t); }
  for (let i = 0; i < 100; i++) { const t = performance.now(); const got = await r.get(`k-${i}`); gets.push(performance.now() - t); if (!got) throw new Error(`k-${i} not found`); }
  const n = 500;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: n }, (_, i) => w.put(`burst-${i}`, value)));
  const perSec = n / ((performance.now() - t0) / 1000);
  for (const p of ps) await p.close();
  return { put: median(puts), get: median(gets), putsPerSec: perSec };
}

/** connect(did) through the ring, median of 5: the offer and answer wait `wait` ms after
 * their first candidate (0: they leave at once and every candidate trickles). */
async function ringSignalled(wait) {
  const make = async () => R.Provider.create({ account: await R.Account.generate(), ringCandidateWaitMs: wait });
  const [x, y, z] = [await make(), await make(), await make()];
  await H.manual(y, x); await H.manual(z, x);
  await H.waitFor("ring of three", () => H.ringCorrect([x, y, z]), 20000);
  const ts = [];
  for (let i = 0; i < 5; i++) {
    if (z.peers().includes(y.did)) { z.disconnect(y.did); await H.sleep(50); }
    const t = performance.now();
    await z.connect(y.did);
    ts.push(performance.now() - t);
  }
  for (const p of [x, y, z]) await p.close();
  return median(ts);
}

export async function run() {
  const res = {};
  const raws = [], rings = [];
  for (let i = 0; i < 5; i++) { const r = await rawPair(); raws.push(r.ms); r.close(); }
  for (let i = 0; i < 5; i++) { const r = await ringPair(); rings.push(r.ms); await r.a.close(); await r.b.close(); }
  res.setup = { raw: median(raws), manual: median(rings) };
  // Ring-signalled: three providers; the third reaches the second through the first.
  res.setup.ringSignalled = await ringSignalled(15);
  res.setup.ringTrickled = await ringSignalled(0);

  const raw = await rawPair();
  const ring = await ringPair();
  res.rtt = { raw: await rawRtt(raw, 200), ring: await ringRtt(ring, 200) };
  // Throughput: five rounds alternating raw and ring, medians (the machine is noisy).
  const rounds = async (size, count) => {
    const r = { raw: [], ring: [] };
    for (let i = 0; i < 5; i++) {
      r.raw.push(await rawThroughput(raw, size, count));
      r.ring.push(await ringThroughput(ring, size, count, i));
    }
    return { raw: median(r.raw), ring: median(r.ring), rounds: r };
  };
  res.tp16k = await rounds(16 << 10, 400);
  res.tp1m = await rounds(1 << 20, 24);
  raw.close(); await ring.a.close(); await ring.b.close();
  res.crypto = await R.cryptoBench(500);
  res.store = await storeBench();
  return res;
}
