// Launches Debian's Chromium headless with the flags that keep WebRTC on loopback and
// stop Chromium's own network lookups (see webdriver.json).
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";

const flags = JSON.parse(readFileSync(new URL("../../webdriver.json", import.meta.url), "utf8"))["goog:chromeOptions"].args;

export function launch() {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: [...flags, "--no-sandbox", "--js-flags=--expose-gc"] });
}

/** A page on the test server with the package loaded as `window.R` (in a new context if
 * given the browser, or in the given context). */
export async function openPage(browser, base) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("[page error]", e.message));
  page.on("console", (m) => { if (m.type() === "error") console.error("[console]", m.text()); });
  await page.goto(`${base}/tests/browser/blank.html`);
  await page.evaluate(async () => { window.R = await import("/pkg/dist/index.js"); });
  return page;
}

/** A test runner: `test(name, f)` runs `f` unless `ONLY` is set and not in `name`, and
 * prints ok / FAIL with the time; `failures()` counts the failed ones. */
export function runner() {
  let failed = 0;
  async function test(name, f) {
    if (process.env.ONLY && !name.includes(process.env.ONLY)) return;
    const t0 = Date.now();
    try {
      await f();
      console.log(`ok   ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e.stack ?? e}`);
    }
  }
  return { test, failures: () => failed };
}
