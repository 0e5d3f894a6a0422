// Page helpers for IdentityInit that are not charts: one global object, iiApp.
window.iiApp = {
  // Copies text to the clipboard: the Clipboard API where the page is a secure context (https, localhost), else a
  // hidden textarea and execCommand (plain http on a lab network). Returns whether it worked.
  async copy(text) {
    try {
      if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(text); return true; }
    } catch { /* fall through */ }
    const area = document.createElement("textarea");
    area.value = text; area.setAttribute("readonly", ""); area.style.position = "fixed"; area.style.opacity = "0";
    document.body.appendChild(area); area.select();
    try { return document.execCommand("copy"); } finally { area.remove(); }
  },
};

// blazor.web.js is loaded with autostart="false": the circuit starts once a run page's cards in view have drawn the
// history they fetched over HTTP (at most 3 s), at once on every other page. Its start-up (negotiate, WebSocket, the
// first interactive render) otherwise ran as long tasks on the main thread between a card's bytes and its drawing.
window.iiCharts.inViewDrawn(3000).then(() => Blazor.start());
