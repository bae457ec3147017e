// The Client envelope codec (js/envelope.ts, built into pkg/dist): every field round-trips,
// and every malformed envelope a peer could send decodes to `undefined`, never throws.
// Run: node --test tests/js/ (after scripts/build-pkg.sh).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Kind, MAGIC, decodeEnvelope, encodeEnvelope } from "../../pkg/dist/envelope.js";

const enc = new TextEncoder();

test("every kind, id, namespace and payload round-trips", () => {
  const ids = [0, 1, 255, 65_536, 0x7fff_ffff, 0xffff_ffff];
  const spaces = ["", "a", "chat", "ü-名前", "x".repeat(255)];
  const payloads = [new Uint8Array(), new Uint8Array([0]), enc.encode("hello"), new Uint8Array(70_000).fill(7)];
  for (const kind of [Kind.Message, Kind.Request, Kind.Reply, Kind.ErrorReply])
    for (const id of ids)
      for (const ns of spaces)
        for (const data of payloads) {
          const nsBytes = enc.encode(ns);
          if (nsBytes.length > 255) continue;
          const e = decodeEnvelope(encodeEnvelope(kind, id, nsBytes, data));
          assert.ok(e, `${kind} ${id} ${ns}`);
          assert.equal(e.kind, kind);
          assert.equal(e.id, id);
          assert.equal(e.namespace, ns);
          assert.deepEqual(e.data, data);
        }
});

test("an envelope inside a larger buffer (a view at an offset) decodes", () => {
  const inner = encodeEnvelope(Kind.Request, 42, enc.encode("ns"), enc.encode("body"));
  const outer = new Uint8Array(inner.length + 13);
  outer.set(inner, 5);
  const e = decodeEnvelope(outer.subarray(5, 5 + inner.length));
  assert.equal(e?.id, 42);
  assert.equal(new TextDecoder().decode(e?.data), "body");
});

test("malformed envelopes decode to undefined", () => {
  const good = encodeEnvelope(Kind.Message, 7, enc.encode("chat"), enc.encode("x"));
  assert.equal(good[0], MAGIC);
  // Every truncation of the header and of the namespace.
  for (let n = 0; n < 7 + 4; n++) assert.equal(decodeEnvelope(good.subarray(0, n)), undefined, `truncated to ${n}`);
  const bad = (f) => {
    const b = good.slice();
    f(b);
    return decodeEnvelope(b);
  };
  assert.equal(bad((b) => (b[0] = 0)), undefined, "wrong magic");
  for (const k of [4, 5, 200, 255]) assert.equal(bad((b) => (b[1] = k)), undefined, `kind ${k}`);
  assert.equal(bad((b) => (b[6] = 255)), undefined, "namespace longer than the envelope");
  // Random bytes never throw.
  let seed = 1;
  const next = () => (seed = (seed * 1_103_515_245 + 12_345) >>> 0) & 0xff;
  for (let i = 0; i < 20_000; i++) {
    const b = Uint8Array.from({ length: next() % 40 }, next);
    if (i % 2) b[0] = MAGIC;
    const e = decodeEnvelope(b);
    const valid = b.length >= 7 && b[0] === MAGIC && b[1] <= 3 && b.length >= 7 + b[6];
    assert.equal(e !== undefined, valid, `bytes ${b}`);
    if (e) assert.equal(e.data.length, b.length - 7 - b[6]);
  }
});
