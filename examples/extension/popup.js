// The popup: asks the service worker (which asks the offscreen document) what the
// Provider is doing, every second while open.
async function refresh() {
  const info = await chrome.runtime.sendMessage({ cmd: "info" });
  if (info.error) return void (document.getElementById("did").textContent = info.error);
  document.getElementById("did").textContent = info.did;
  document.getElementById("peers").textContent = String(info.peers.length);
  document.getElementById("messages").replaceChildren(
    ...info.received.map((m) => Object.assign(document.createElement("li"), { textContent: `${m.from}: ${m.text}` })),
  );
}
refresh();
setInterval(refresh, 1000);
