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

// Blazor's and MudBlazor's scripts (preloaded by the page's head) run, and the circuit starts, once a run page's cards
// in view have drawn the history they fetched over HTTP (at most 3 s), at once on every other page. Evaluating those
// scripts and the circuit's start-up (negotiate, WebSocket, the first interactive render) otherwise ran as long tasks on
// the main thread between a card's bytes and its drawing.
function iiLoadScript(src, attributes = {}) {
  return new Promise((loaded, failed) => {
    const script = document.createElement("script");
    for (const [name, value] of Object.entries(attributes)) script.setAttribute(name, value);
    script.src = src;
    script.onload = loaded;
    script.onerror = () => failed(new Error(`${src} did not load`));
    document.body.appendChild(script);
  });
}
window.iiCharts.inViewDrawn(3000)
  .then(() => iiLoadScript("_content/MudBlazor/MudBlazor.min.js"))
  .then(() => iiLoadScript("_framework/blazor.web.js", { autostart: "false" }))
  .then(() => Blazor.start());
