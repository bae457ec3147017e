// In-page helpers for the browser tests and the benchmark (loaded as an ES module).
import * as R from "/pkg/dist/index.js";

export { R };

export const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

export async function waitFor(what, cond, ms = 20000, step = 20) {
  const t0 = performance.now();
  while (!(await cond())) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(step);
  }
  return performance.now() - t0;
}

export async function providers(n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await R.Provider.create({ account: await R.Account.generate() }));
  return out;
}

/** One manual handshake: `a` offers, `b` answers, `a` accepts (and joins b's ring if alone). */
export async function manual(a, b) {
  const offer = await a.createOffer();
  const answer = await b.answerOffer(offer);
  return a.acceptAnswer(answer);
}

const big = (d) => BigInt(d);

/** True when every provider's successor and predecessor are the true ones (sorted DIDs). */
export function ringCorrect(ps) {
  const dids = ps.map((p) => p.did).sort((x, y) => (big(x) < big(y) ? -1 : 1));
  return ps.every((p) => {
    const i = dids.indexOf(p.did);
    const info = p.info();
    const succ = dids[(i + 1) % dids.length];
    const pred = dids[(i + dids.length - 1) % dids.length];
    return info.successor === succ && info.predecessor === pred;
  });
}

export function pattern(n, seed = 1) {
  const b = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

export function equal(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
