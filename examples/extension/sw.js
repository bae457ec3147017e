// The service worker: no RTCPeerConnection here, so the Provider lives in an offscreen
// document (reason WEB_RTC) that this worker opens on demand. It relays requests from
// the popup, content scripts and pages (externally_connectable) to it. The worker may be
// stopped at any time; the offscreen document and its Provider stay.
const OFFSCREEN = { url: "offscreen.html", reasons: ["WEB_RTC"], justification: "a rings-node Provider: WebRTC data channels to peers" };

let opening = null;
async function ensureOffscreen() {
  if (await chrome.offscreen.hasDocument()) return;
  // Requests may race here: one opens it, and "only a single offscreen document" is no failure.
  opening ??= chrome.offscreen.createDocument(OFFSCREEN)
    .catch((e) => { if (!String(e).includes("single offscreen")) throw e; })
    .finally(() => { opening = null; });
  await opening;
}

async function relay(request) {
  await ensureOffscreen();
  // The offscreen document answers once its Provider is ready. A document still loading
  // (opened by a request racing this one) has no listener yet: ask again shortly.
  for (let tries = 0; ; tries++) {
    try {
      return await chrome.runtime.sendMessage({ to: "offscreen", request });
    } catch (e) {
      if (tries >= 40 || !String(e).includes("Receiving end does not exist")) throw e;
      await new Promise((ok) => setTimeout(ok, 50));
    }
  }
}

function answer(request, reply) {
  relay(request).then(reply, (e) => reply({ error: String(e) }));
  return true; // the reply comes later
}

chrome.runtime.onMessage.addListener((m, _sender, reply) => (m && m.to === "offscreen" ? false : answer(m, reply)));
chrome.runtime.onMessageExternal.addListener((m, _sender, reply) => answer(m, reply));
chrome.runtime.onStartup.addListener(() => void ensureOffscreen());
chrome.runtime.onInstalled.addListener(() => void ensureOffscreen());
