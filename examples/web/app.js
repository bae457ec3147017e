import { Account, Provider } from "/pkg/dist/index.js";

const $ = (id) => document.getElementById(id);
const log = (s) => { $("log").textContent = `${new Date().toLocaleTimeString()} ${s}\n` + $("log").textContent; };

// One IndexedDB cache per tab (sessionStorage survives a reload of the tab).
const tab = (sessionStorage.ringsTab ??= crypto.randomUUID());
const provider = await Provider.create({ account: await Account.generate(), persist: `example-${tab}` });
const chat = provider.client("chat");
$("did").textContent = provider.did;
chat.onMessage((m) => log(`from ${m.from.slice(0, 10)}… (${m.hops} hops): ${m.text()}`));
provider.on("peerUp", ({ did }) => log(`link up ${did}`));
provider.on("peerDown", ({ did, reason }) => log(`link down ${did} (${reason})`));
provider.on("joined", () => log("joined the ring"));

// Same-origin tabs: this tab answers offers posted by other tabs, and joins through the
// first tab that answers its own (its cached peers first: a reloaded tab keeps its cache).
const channel = "rings-node-example";
provider.shareLocally(channel);
// The bootstrap URL (?bootstrap=… or the field) is remembered by this browser.
const url = new URLSearchParams(location.search).get("bootstrap") ?? localStorage.ringsBootstrap;
if (url) $("bootstrap").value = url;
const viaHttp = () => {
  const u = $("bootstrap").value.trim();
  localStorage.ringsBootstrap = u;
  return provider.connectViaHttp(u).then((did) => log(`linked to the native node ${did}`), (e) => log(`${u}: ${e.code}: ${e.message}`));
};
$("connect").onclick = viaHttp;
// Other tabs first, then the native nodes this tab's cache remembers, then the field's.
provider.rejoin({ channel, timeoutMs: 800, bootstrap: [$("bootstrap").value.trim()] }).then(
  (did) => log(`linked to ${did}`),
  (e) => log(`${e.code}: ${e.message} (open another tab, start a native node, or paste an offer)`),
);

$("send").onclick = () => chat.send($("to").value.trim(), $("text").value).then(() => log("sent"), (e) => log(`${e.code}: ${e.message}`));
const kv = provider.client("example");
const fail = (e) => log(`${e.code ?? "error"}: ${e.message}`);
$("put").onclick = () => kv.put($("key").value, $("value").value).then(() => log(`stored ${$("key").value}`), fail);
$("get").onclick = () => kv.get($("key").value).then((r) => log(r ? `${$("key").value} = ${new TextDecoder().decode(r.value)} (by ${r.writer.slice(0, 10)}…, v${r.version})` : `${$("key").value}: not found`), fail);
$("register").onclick = () => kv.registerService($("service").value).then(() => log(`registered as ${$("service").value}`), fail);
$("lookup").onclick = () => kv.lookupService($("service").value).then((d) => log(`${$("service").value}: ${d.join(", ") || "nobody"}`), fail);
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
