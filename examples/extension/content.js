// A content script: asks the service worker (which asks the offscreen document) for the
// extension Provider's DID and shows it to the page as <html data-rings-did="…">, so a
// page knows whom to link with.
chrome.runtime.sendMessage({ cmd: "info" }).then((info) => {
  if (info && info.did) document.documentElement.dataset.ringsDid = info.did;
  else console.warn("rings-node extension:", info && info.error);
});
