// The README's embedding snippets, so the tests run what users copy. A fenced block right
// after `<!-- snippet: NAME -->` is used by a test as it stands (snippet(NAME)); one
// after `<!-- from: PATH -->` is an excerpt of that file: checkExcerpts() asserts every
// run of lines of the file (JS: trimmed, `//` comments aside, which may annotate the
// excerpt; JSON: a subset of the file's object).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const README = readFileSync(`${ROOT}README.md`, "utf8");

/** Every tagged block: { tag: "snippet" | "from", name, lang, body }. A tag whose block
 *  is not found right after it, or a name used twice, fails (nothing is skipped). */
function blocks() {
  const found = [];
  const re = /<!-- (snippet|from): ([^ ]+) -->[ \t]*\r?\n[ \t]*```(\w*)\r?\n([\s\S]*?)\r?\n[ \t]*```/g;
  for (const m of README.matchAll(re)) {
    const lines = m[4].split(/\r?\n/);
    const indent = lines[0].match(/^ */)[0].length; // blocks inside list items are indented
    found.push({ tag: m[1], name: m[2], lang: m[3], body: lines.map((l) => l.slice(indent)).join("\n") });
  }
  const tags = README.match(/<!-- (snippet|from): /g) ?? [];
  assert.equal(found.length, tags.length, "a README snippet/from tag is not followed by its fenced block");
  const names = found.map((b) => `${b.tag}:${b.name}`);
  assert.equal(new Set(names).size, names.length, `a README block name is used twice: ${names}`);
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

/** Asserts each `from:` excerpt is in its file (JS: its code lines, `//` comments aside,
 *  are a contiguous run of the file's); returns how many were checked. */
export function checkExcerpts() {
  const excerpts = blocks().filter((b) => b.tag === "from");
  const code = (text) => text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("//"));
  for (const { name, lang, body } of excerpts) {
    const file = readFileSync(`${ROOT}${name}`, "utf8");
    if (lang === "json") {
      assert.ok(isSubset(JSON.parse(`{${body.replace(/,\s*$/, "")}}`), JSON.parse(file)), `README excerpt of ${name} is not in it:\n${body}`);
      continue;
    }
    const [want, have] = [code(body), code(file)];
    const at = have.findIndex((_, i) => want.every((l, k) => have[i + k] === l));
    assert.ok(want.length > 0 && at >= 0, `README excerpt of ${name} is not a run of its lines:\n${want.join("\n")}`);
  }
  return excerpts.length;
}
