import { Account, Provider } from "/pkg/dist/index.js";

const $ = (id) => document.getElementById(id);
const log = (s) => { $("log").textContent = `${new Date().toLocaleTimeString()} ${s}\n` + $("log").textContent; };

const provider = await Provider.create({ account: await Account.generate() });
const chat = provider.client("chat");
$("did").textContent = provider.did;
chat.onMessage((m) => log(`from ${m.from.slice(0, 10)}… (${m.hops} hops): ${m.text()}`));
provider.on("peerUp", ({ did }) => log(`link up ${did}`));
provider.on("peerDown", ({ did, reason }) => log(`link down ${did} (${reason})`));
provider.on("joined", () => log("joined the ring"));

// Same-origin tabs: a newcomer broadcasts an offer; tabs already there (or older ones)
// answer; the newcomer accepts the first answer and joins the ring through that tab.
const bc = new BroadcastChannel("rings-node-example");
const started = Date.now();
bc.onmessage = async ({ data }) => {
  try {
    if (data.type === "offer" && (provider.info().joined || data.started > started)) {
      bc.postMessage({ type: "answer", to: data.from, answer: await provider.answerOffer(data.offer) });
    } else if (data.type === "answer" && data.to === provider.did && provider.peers().length === 0) {
      log(`linked to ${await provider.acceptAnswer(data.answer)}`);
    }
  } catch (e) { log(`bootstrap: ${e.message}`); }
};
bc.postMessage({ type: "offer", from: provider.did, started, offer: await provider.createOffer() });

$("send").onclick = () => chat.send($("to").value.trim(), $("text").value).then(() => log("sent"), (e) => log(`${e.code}: ${e.message}`));
$("offer").onclick = async () => { $("sig").value = await provider.createOffer(); };
$("answer").onclick = async () => { try { $("sig").value = await provider.answerOffer($("sig").value); } catch (e) { log(`${e.code}: ${e.message}`); } };
$("accept").onclick = async () => { try { log(`linked to ${await provider.acceptAnswer($("sig").value)}`); } catch (e) { log(`${e.code}: ${e.message}`); } };

function draw() {
  const info = provider.info();
  $("succ").textContent = info.successor ?? "–";
  $("pred").textContent = info.predecessor ?? "–";
  $("peers").textContent = provider.peers().join(", ") || "none";
  const nodes = [...new Set([provider.did, ...info.successors, ...info.fingers, ...(info.predecessor ? [info.predecessor] : [])])];
  const angle = (d) => Number((BigInt(d) * 3600n) >> 160n) / 10 * Math.PI / 180;
  const pos = (d) => [Math.sin(angle(d)) * 130, -Math.cos(angle(d)) * 130];
  const links = new Set(provider.peers());
  $("ring").innerHTML = `<circle r="130" fill="none" stroke="#ccc"/>` + nodes.map((d) => {
    const [x, y] = pos(d);
    const me = d === provider.did;
    const line = links.has(d) ? `<line x1="${pos(provider.did)[0]}" y1="${pos(provider.did)[1]}" x2="${x}" y2="${y}" stroke="#8ac"/>` : "";
    return `${line}<circle cx="${x}" cy="${y}" r="${me ? 8 : 5}" fill="${me ? "#d40" : "#36c"}"><title>${d}</title></circle>`;
  }).join("");
  if (!$("to").value && info.successor) $("to").value = info.successor;
}
setInterval(draw, 500);
draw();
