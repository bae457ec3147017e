// `npm run bench`: rings-node against a raw RTCDataChannel pair in one headless Chromium
// page (loopback), plus the wasm size. Prints a markdown table.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { serve } from "./server.mjs";
import { launch, openPage } from "./chromium.mjs";

const server = await serve(0);
const browser = await launch();
const page = await openPage(browser, `http://127.0.0.1:${server.address().port}`);
const r = await page.evaluate(async () => (await import("/tests/browser/bench.js")).run());
await browser.close();
server.close();
const wasm = readFileSync(new URL("../../pkg/dist/rings_node_bg.wasm", import.meta.url));
const f = (x, d = 1) => x.toFixed(d);
console.log("| measure | rings-node | raw RTCDataChannel | ratio |\n|---|---:|---:|---:|");
console.log(`| manual setup (offer → open), median of 5 | ${f(r.setup.manual)} ms | ${f(r.setup.raw)} ms (trickle) | ${f(r.setup.manual / r.setup.raw, 2)}× |`);
console.log(`| ring-signalled connect(did), 2 hops, median of 5 | ${f(r.setup.ringSignalled)} ms | — | — |`);
console.log(`| … every candidate trickled through the ring (ringCandidateWaitMs 0) | ${f(r.setup.ringTrickled)} ms | — | — |`);
console.log(`| 32 B round trip (request → reply), median of 200 | ${f(r.rtt.ring, 2)} ms | ${f(r.rtt.raw, 2)} ms | ${f(r.rtt.ring / r.rtt.raw, 2)}× |`);
console.log(`| throughput, 400 × 16 KiB, median of 5 rounds | ${f(r.tp16k.ring)} MB/s | ${f(r.tp16k.raw)} MB/s | ${f(r.tp16k.ring / r.tp16k.raw, 2)}× |`);
console.log(`| throughput, 24 × 1 MiB, median of 5 rounds | ${f(r.tp1m.ring)} MB/s | ${f(r.tp1m.raw)} MB/s | ${f(r.tp1m.ring / r.tp1m.raw, 2)}× |`);
console.log(`| wasm size | ${wasm.length} B raw, ${gzipSync(wasm, { level: 9 }).length} B gzip | — | — |`);
const s = r.store;
console.log(`\nDHT among six Providers in one page (100 B values, r = 3): put median ${f(s.put, 2)} ms, get median ${f(s.get, 2)} ms (sequential, 100 each); ${f(s.putsPerSec, 0)} puts/s (500 concurrent)`);
const c = r.crypto;
console.log(`\nwasm crypto in Chromium (ops/s): sign ${f(c.sign, 0)}, verify ${f(c.verify, 0)}, delegation ${f(c.delegation, 0)}, pair keys ${f(c.pair, 0)} (these four: once per peer session or hello); per data message: seal 100 B ${f(c.seal, 0)}, open 100 B ${f(c.open, 0)}, seal 16 KiB ${f(c.seal16kMBps)} MB/s`);
