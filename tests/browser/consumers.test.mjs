// Consumers of the packed tarball, as users build them, each driven in headless Chromium:
// a plain ES-module page with no bundler (an import map), a webpack 5 app with defaults,
// a Vite 8 app with no special configuration — its dev server and its production build —
// and a Vite 7 dev server, which needs one of the two fixes the package's error names.
// The apps and their set-up are the README's blocks (readme-snippets.mjs). In each, two Providers link
// by a manual handshake and a message goes across. Run by scripts/test.sh after
// scripts/build-pkg.sh; talks only to 127.0.0.1 (Vite comes from the workspace's
// node_modules, the tarball has no dependencies).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer as httpServer } from "node:http";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build, createServer, preview } from "vite";
import { launch, runner } from "./chromium.mjs";
import { snippet } from "./readme-snippets.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "rings-consumers-"));
const { test, failures } = runner();

// The app every consumer runs, and each consumer's set-up: the README's own blocks.
const APP = snippet("app");
const html = (head, src) =>
  `<!doctype html><html><head><meta charset="utf-8">${head}</head><body><pre id="out">loading</pre><script type="module" src="${src}"></script></body></html>`;

// The tarball, installed into a scratch project as a user's `npm i` would.
const tgz = execFileSync("npm", ["pack", "--silent", "--pack-destination", scratch], { cwd: join(ROOT, "pkg") }).toString().trim().split("\n").pop();
writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
execFileSync("npm", ["install", "--silent", "--no-audit", "--no-fund", "--offline", `./${tgz}`], { cwd: scratch });
mkdirSync(join(scratch, "src"));
writeFileSync(join(scratch, "src", "main.js"), APP);

const browser = await launch();

async function expectApp(url) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("out").textContent !== "loading", null, { timeout: 30000 });
  const text = await page.textContent("#out");
  await page.close();
  assert.match(text, /^ok: hello from 0x[0-9a-fA-F]{40}$/, `${url}: ${text}; page errors: ${errors.join(" | ")}`);
}

/** Serves `index` at / and other paths from `dir`, on 127.0.0.1; returns its URL and a closer. */
async function staticServer(dir, index) {
  const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };
  const server = httpServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
    const file = path === "/" ? index : join(dir, path);
    const body = file.startsWith(dir) || file === index ? await readFile(file).catch(() => null) : null;
    if (body) res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(body);
    else res.writeHead(404).end();
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() };
}

await test("a plain ES-module page with no bundler (an import map) loads the package and links two Providers", async () => {
  writeFileSync(join(scratch, "plain.html"), `<!doctype html><html><head><meta charset="utf-8"></head><body><pre id="out">loading</pre>${snippet("plain-page")}</body></html>`);
  const server = await staticServer(scratch, join(scratch, "plain.html"));
  try {
    await expectApp(server.url);
  } finally {
    server.close();
  }
});

await test("a webpack 5 app with the default configuration (production build) links two Providers", async () => {
  const { default: webpack } = await import("webpack");
  // The README's webpack.config.js, run from the project's directory as `npx webpack` would.
  writeFileSync(join(scratch, "webpack.config.js"), snippet("webpack-config"));
  const config = (await import(pathToFileURL(join(scratch, "webpack.config.js")))).default;
  const out = config.output.path;
  assert.equal(out, join(scratch, "webpack-dist"));
  const stats = await new Promise((ok, fail) => webpack({ context: scratch, ...config }, (e, st) => (e ? fail(e) : ok(st))));
  assert.ok(!stats.hasErrors(), stats.toString({ all: false, errors: true }));
  writeFileSync(join(out, "index.html"), html("", "/main.js"));
  const server = await staticServer(out, join(out, "index.html"));
  try {
    await expectApp(server.url);
  } finally {
    server.close();
  }
});

writeFileSync(join(scratch, "index.html"), html("", "/src/main.js"));
const quiet = { root: scratch, logLevel: "error", configFile: false };

await test("a Vite app with no special configuration: the dev server serves it and it links two Providers", async () => {
  const server = await createServer({ ...quiet, server: { host: "127.0.0.1", port: 0, strictPort: false } });
  await server.listen();
  try {
    await expectApp(server.resolvedUrls.local[0]);
  } finally {
    await server.close();
  }
});

await test("a Vite app with no special configuration: the production build (vite build, vite preview) links two Providers", async () => {
  await build({ ...quiet, build: { target: "es2022" } });
  const server = await preview({ ...quiet, preview: { host: "127.0.0.1", port: 0, strictPort: false } });
  try {
    await expectApp(server.resolvedUrls.local[0]);
  } finally {
    server.httpServer.close();
  }
});

// Vite 7's dependency optimizer moves the package's JS into .vite/deps/ and the wasm URL
// next to it resolves to the app's HTML. The package says so and what to do; both fixes
// the README gives (its vite.config.js, or the app passing the wasm's URL) work.
await test("a Vite 7 dev server: without config the page gets a WASM error naming both fixes; the README's config and its initialize(wasmUrl) each make it link two Providers", async () => {
  const vite7 = await import("vite7");
  writeFileSync(join(scratch, "vite7.config.js"), snippet("vite-exclude"));
  mkdirSync(join(scratch, "url"));
  writeFileSync(join(scratch, "url", "main.js"), snippet("vite-wasm-url") + APP);
  writeFileSync(join(scratch, "url", "index.html"), html("", "/main.js"));
  // The app reports the error's code and message: the hint must name the fixes.
  const run = async (name, options) => {
    const server = await vite7.createServer({ ...quiet, cacheDir: join(scratch, `.vite7-${name}`), server: { host: "127.0.0.1", port: 0, strictPort: false }, ...options });
    await server.listen();
    try {
      const page = await browser.newPage();
      await page.goto(server.resolvedUrls.local[0]);
      await page.waitForFunction(() => document.getElementById("out").textContent !== "loading", null, { timeout: 30000 });
      const text = await page.textContent("#out");
      await page.close();
      return text;
    } finally {
      await server.close();
    }
  };
  const plain = await run("plain", {});
  console.log(`      Vite 7 dev, no config: ${plain.slice(0, 160)}…`);
  assert.match(plain, /^error: WASM could not load .*found 3c 21.*optimizeDeps: \{ exclude: \["@ringsnetwork\/rings-node"\] \}.*rings_node_bg\.wasm\?url/, plain);
  const configured = await run("config", { configFile: join(scratch, "vite7.config.js") });
  assert.match(configured, /^ok: hello from 0x[0-9a-fA-F]{40}$/, `with the README's vite.config.js: ${configured}`);
  const passed = await run("url", { root: join(scratch, "url") });
  assert.match(passed, /^ok: hello from 0x[0-9a-fA-F]{40}$/, `with initialize(wasmUrl): ${passed}`);
});

await browser.close();
rmSync(scratch, { recursive: true, force: true });
console.log(failures() ? `${failures()} consumer test(s) failed` : "all consumer tests passed");
process.exit(failures() ? 1 : 0);
