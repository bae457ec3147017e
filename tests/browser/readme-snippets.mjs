// The README's embedding snippets, so the tests run what users copy. A fenced block right
// after `<!-- snippet: NAME -->` is used by a test as it stands (snippet(NAME)); one
// after `<!-- from: PATH -->` is an excerpt of that file: checkExcerpts() asserts every
// line of it appears in the file (JS: each trimmed line but `//` comments, which may
// annotate the excerpt; JSON: a subset of the file's object).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const README = readFileSync(`${ROOT}README.md`, "utf8");

/** Every tagged block: { tag: "snippet" | "from", name, lang, body }. */
function blocks() {
  const found = [];
  const re = /<!-- (snippet|from): ([^ ]+) -->\s*\n\s*```(\w*)\n([\s\S]*?)\n\s*```/g;
  for (const m of README.matchAll(re)) {
    const indent = m[4].match(/^ */)[0].length; // blocks inside list items are indented
    found.push({ tag: m[1], name: m[2], lang: m[3], body: m[4].split("\n").map((l) => l.slice(indent)).join("\n") });
  }
  return found;
}

export function snippet(name) {
  const b = blocks().find((x) => x.tag === "snippet" && x.name === name);
  assert.ok(b, `README.md has no block tagged <!-- snippet: ${name} -->`);
  return b.body + "\n";
}

function isSubset(part, whole) {
  if (Array.isArray(part)) return Array.isArray(whole) && part.every((p) => whole.some((w) => isSubset(p, w)));
  if (part && typeof part === "object") return !!whole && typeof whole === "object" && Object.entries(part).every(([k, v]) => isSubset(v, whole[k]));
  return part === whole;
}

/** Asserts each `from:` excerpt is in its file; returns how many were checked. */
export function checkExcerpts() {
  const excerpts = blocks().filter((b) => b.tag === "from");
  for (const { name, lang, body } of excerpts) {
    const file = readFileSync(`${ROOT}${name}`, "utf8");
    if (lang === "json") {
      assert.ok(isSubset(JSON.parse(`{${body.replace(/,\s*$/, "")}}`), JSON.parse(file)), `README excerpt of ${name} is not in it:\n${body}`);
      continue;
    }
    const lines = new Set(file.split("\n").map((l) => l.trim()));
    for (const line of body.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("//"))) {
      assert.ok(lines.has(line), `README excerpt of ${name}: this line is not in the file:\n  ${line}`);
    }
  }
  return excerpts.length;
}
