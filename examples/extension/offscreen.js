// The offscreen document: holds the extension's Provider and answers the requests the
// service worker relays. Commands: info, createOffer, answerOffer, acceptAnswer, send.
import { Account, Provider } from "./vendor/rings-node/index.js";

const received = [];
const ready = (async () => {
  const provider = await Provider.create({ account: await Account.generate() });
  provider.client("demo").onMessage((m) => { received.push({ from: m.from, text: m.text() }); });
  return provider;
})();

async function handle(r) {
  const p = await ready;
  switch (r?.cmd) {
    case "info": return { did: p.did, peers: p.peers(), received };
    case "createOffer": return { offer: await p.createOffer() };
    case "answerOffer": return { answer: await p.answerOffer(r.offer) };
    case "acceptAnswer": return { peer: await p.acceptAnswer(r.answer) };
    case "send": await p.client("demo").send(r.did, r.text); return { sent: true };
    default: return { error: `unknown command ${r?.cmd}` };
  }
}

chrome.runtime.onMessage.addListener((m, _sender, reply) => {
  if (!m || m.to !== "offscreen") return false;
  handle(m.request).then(reply, (e) => reply({ error: `${e?.code ?? "ERROR"}: ${e?.message ?? e}` }));
  return true;
});
