// The Manifest V3 example (examples/extension) loaded unpacked into headless Chromium
// with the built package: its Provider (in the offscreen document) links with a page's
// Provider through the service worker (externally_connectable), messages go both ways,
// a content script and the popup reach it through the worker too, and the Provider still serves after the service worker was
// stopped. Run by scripts/test.sh after scripts/build-pkg.sh; 127.0.0.1 only.
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "./server.mjs";
import { checkExcerpts } from "./readme-snippets.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
// The README's excerpts of the example (manifest, service worker, offscreen document) are in it.
const excerpts = checkExcerpts();
assert.ok(excerpts >= 3, `README: ${excerpts} excerpts of examples/extension checked, 3 expected`);
console.log(`README: ${excerpts} excerpts of examples/ found in their files`);
const work = mkdtempSync(join(tmpdir(), "rings-extension-"));
const ext = join(work, "extension");
// The example as a user would ship it: its files and the package's dist/ under vendor/.
cpSync(join(ROOT, "examples/extension"), ext, { recursive: true });
cpSync(join(ROOT, "pkg/dist"), join(ext, "vendor/rings-node"), { recursive: true });

const flags = JSON.parse(readFileSync(join(ROOT, "webdriver.json"), "utf8"))["goog:chromeOptions"].args;
const ctx = await chromium.launchPersistentContext(join(work, "profile"), {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [...flags, "--no-sandbox", `--disable-extensions-except=${ext}`, `--load-extension=${ext}`],
});
const server = await serve(0);
const base = `http://127.0.0.1:${server.address().port}`;
let failed = 0;

try {
  const t0 = Date.now();
  const worker = ctx.serviceWorkers()[0] ?? (await ctx.waitForEvent("serviceworker", { timeout: 15000 }));
  const id = new URL(worker.url()).host;
  const page = await ctx.newPage();
  page.on("pageerror", (e) => console.error("[page error]", e.message));
  page.on("console", (m) => m.type() !== "log" && console.error("[console]", m.text()));
  await page.goto(`${base}/tests/browser/blank.html`);
  // The page's Provider, and a way to ask the extension (through its service worker).
  const first = await page.evaluate(async (id) => {
    const R = await import("/pkg/dist/index.js");
    const ask = (m) => new Promise((ok) => chrome.runtime.sendMessage(id, m, ok));
    window.ask = ask;
    const p = await R.Provider.create({ account: await R.Account.generate() });
    window.p = p;
    window.got = [];
    p.client("demo").onMessage((m) => { window.got.push(m.text()); });
    const info = await ask({ cmd: "info" });
    if (info.error) throw new Error(info.error);
    const { answer, error } = await ask({ cmd: "answerOffer", offer: await p.createOffer() });
    if (error) throw new Error(error);
    await p.acceptAnswer(answer);
    await p.client("demo").send(info.did, "hello extension");
    const sent = await ask({ cmd: "send", did: p.did, text: "hello page" });
    const t = performance.now();
    while (window.got.length < 1 && performance.now() - t < 10000) await new Promise((ok) => setTimeout(ok, 20));
    let seen = await ask({ cmd: "info" });
    while (seen.received.length < 1 && performance.now() - t < 10000) seen = await ask({ cmd: "info" });
    return { extDid: info.did, page: p.did, sent, got: window.got, seen: seen.received, peers: seen.peers };
  }, id);
  assert.deepEqual(first.sent, { sent: true });
  assert.deepEqual(first.got, ["hello page"], "the extension's message reached the page");
  assert.deepEqual(first.seen, [{ from: first.page, text: "hello extension" }], "the page's message reached the extension");
  assert.deepEqual(first.peers, [first.page]);
  // The content script asked through the service worker too, and told the page.
  await page.waitForFunction(() => document.documentElement.dataset.ringsDid, null, { timeout: 10000 });
  assert.equal(await page.evaluate(() => document.documentElement.dataset.ringsDid), first.extDid, "the content script's answer");

  // The popup shows the Provider and what it received.
  const popup = await ctx.newPage();
  await popup.goto(`chrome-extension://${id}/popup.html`);
  await popup.waitForFunction((did) => document.getElementById("did").textContent === did, first.extDid, { timeout: 10000 });
  assert.equal(await popup.textContent("#peers"), "1");
  assert.match(await popup.textContent("#messages"), /hello extension/);
  await popup.close();

  // Stop the service worker (as Chromium does after 30 s idle): the next request wakes
  // it, and the offscreen document's Provider is the same one, still linked.
  const cdp = await ctx.newCDPSession(page);
  const states = [];
  cdp.on("ServiceWorker.workerVersionUpdated", ({ versions }) => {
    for (const v of versions) if (v.scriptURL.startsWith(`chrome-extension://${id}/`)) states.push(v.runningStatus);
  });
  await cdp.send("ServiceWorker.enable");
  await cdp.send("ServiceWorker.stopAllWorkers");
  const t1 = Date.now();
  while (states.at(-1) !== "stopped" && Date.now() - t1 < 10000) await new Promise((ok) => setTimeout(ok, 50));
  assert.equal(states.at(-1), "stopped", `the service worker stopped (states seen: ${states.join(", ")})`);
  const after = await page.evaluate(async () => {
    const info = await window.ask({ cmd: "info" });
    const sent = await window.ask({ cmd: "send", did: window.p.did, text: "still here" });
    const t = performance.now();
    while (window.got.length < 2 && performance.now() - t < 10000) await new Promise((ok) => setTimeout(ok, 20));
    return { did: info.did, peers: info.peers, sent, got: window.got };
  });
  assert.equal(states.at(-1), "running", `a request started the service worker again (states seen: ${states.join(", ")})`);
  assert.equal(after.did, first.extDid, "the same Provider after the worker restarted");
  assert.deepEqual(after.peers, [first.page], "still linked");
  assert.deepEqual(after.got, ["hello page", "still here"]);
  console.log(`ok   the MV3 example: its Provider (offscreen document) links with a page's, messages both ways, a content script and the popup reach it, and it serves after the service worker was stopped (${Date.now() - t0} ms)`);
} catch (e) {
  failed++;
  console.log(`FAIL the MV3 example: ${e.stack ?? e}`);
} finally {
  await ctx.close();
  server.close();
  rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
