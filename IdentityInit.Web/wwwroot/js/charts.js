// Live charts for IdentityInit: uPlot line charts fed incrementally from Blazor, with min/max-preserving downsampling,
// and canvas heatmaps. One global object, iiCharts; every function takes the id of the chart's container element.
(function () {
  const charts = new Map();
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363"];

  // Per pixel column keep the first, min, max and last point, so spikes survive; non-finite values become gaps (null).
  function downsample(xs, ys, buckets) {
    if (xs.length <= buckets * 4) return [xs, ys.map(v => Number.isFinite(v) ? v : null)];
    const ox = [], oy = [], x0 = xs[0], span = (xs[xs.length - 1] - x0) || 1;
    let i = 0;
    for (let b = 0; b < buckets && i < xs.length; b++) {
      const end = x0 + span * (b + 1) / buckets;
      let minI = -1, maxI = -1, gapI = -1; const first = i;
      for (; i < xs.length && (xs[i] <= end || b === buckets - 1); i++) {
        const v = ys[i];
        if (!Number.isFinite(v)) { if (gapI < 0) gapI = i; continue; }
        if (minI < 0 || v < ys[minI]) minI = i;
        if (maxI < 0 || v > ys[maxI]) maxI = i;
      }
      const picks = [first, minI, maxI, i - 1, gapI].filter(k => k >= first && k < i);
      [...new Set(picks)].sort((a, b) => a - b).forEach(k => { ox.push(xs[k]); oy.push(Number.isFinite(ys[k]) ? ys[k] : null); });
    }
    return [ox, oy];
  }

  function formatTick(v) {
    if (v == null) return "";
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(0) : String(+v.toPrecision(4));
  }

  // Hover values: 4 significant digits, scientific when small or large (a spread of 1e-9 must not read 0).
  // A series' colour follows its name (FNV-1a), not its arrival order: the same on live view, reload and compare.
  // A symmetry-break marker ("\u25B2 layer") and a band ("name lo"/"name hi") take their line's colour.
  function colorOf(name) {
    const key = name.replace(/^\u25B2 /, "").replace(/ (lo|hi)$/, "");
    let h = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) { h ^= key.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
    return palette[h % palette.length];
  }

  function formatValue(v) {
    if (v == null || Number.isNaN(v)) return "-";
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(+v.toPrecision(6));
  }

  function transformValue(chart, v) {
    if (chart.transform === "neglog") return -Math.log(Math.abs(v));
    return v;
  }

  function build(chart) {
    const el = document.getElementById(chart.id);
    if (!el) return;
    const names = [...chart.series.keys()];
    const width = Math.max(320, el.clientWidth || 600);
    const buckets = Math.max(100, Math.floor(width));
    const tables = [];
    let shown = 0, total = 0;
    for (const name of names) {
      const s = chart.series.get(name);
      const ys = s.ys.map(v => transformValue(chart, v));
      const [dx, dy] = downsample(s.xs, ys, buckets);
      shown += dx.length; total += s.xs.length;
      tables.push([dx, dy]);
    }
    const data = names.length ? uPlot.join(tables) : [[]];
    if (chart.info) chart.info.textContent = total === shown ? `${total} points` : `showing ${shown} of ${total} points (min/max kept)`;
    const sameSeries = chart.plot && chart.plotNames.length === names.length && chart.plotNames.every((n, k) => n === names[k]);
    if (sameSeries) { chart.plot.setData(data, !chart.zoomed); return; } // keep the user's zoom, else follow the data
    // New series: rebuild, keeping zoom and each series' visibility.
    let scale = null;
    const hidden = new Set();
    if (chart.plot) {
      const x = chart.plot.scales.x;
      if (chart.zoomed) scale = [x.min, x.max];
      chart.plot.series.forEach((s, k) => { if (k > 0 && !s.show) hidden.add(chart.plotNames[k - 1]); });
      chart.plot.destroy();
    }
    const opts = {
      width, height: chart.height, title: chart.title,
      scales: { x: { time: false }, y: chart.logY ? { distr: 3 } : {} },
      axes: [{ label: chart.xLabel }, { label: chart.yLabel, size: 64, values: (u, vals) => vals.map(formatTick) }],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      series: [{ label: chart.xLabel }].concat(names.map((n, k) => {
        const marker = n.startsWith("\u25B2 ");
        const band = / (lo|hi)$/.test(n);
        const s = { label: n, show: !hidden.has(n), stroke: colorOf(n), width: band ? 1 : 1.5, spanGaps: !marker,
                    value: (u, v) => formatValue(v) };
        if (band) s.dash = [4, 4];
        if (marker) { s.points = { show: true, size: 9, fill: colorOf(n) }; s.paths = () => null; }
        else if (chart.series.get(n).xs.length < 3) s.points = { show: true, size: 5 };
        return s;
      })),
      hooks: { setSelect: [u => { if (u.select.width > 0) chart.zoomed = true; }] }, // a drag-zoom by the user
    };
    const bands = [];
    names.forEach((n, k) => { if (n.endsWith(" hi")) { const lo = names.indexOf(n.slice(0, -3) + " lo"); if (lo >= 0) bands.push({ series: [k + 1, lo + 1], fill: "rgba(31,119,180,0.15)" }); } });
    if (bands.length) opts.bands = bands;
    chart.plotNames = names;
    chart.plot = new uPlot(opts, data, el);
    el.ondblclick = () => { chart.zoomed = false; };
    if (scale) chart.plot.setScale("x", { min: scale[0], max: scale[1] });
  }

  function schedule(chart) {
    if (chart.pending) return;
    chart.pending = true;
    requestAnimationFrame(() => { chart.pending = false; build(chart); });
  }

  window.iiCharts = {
    create(id, spec) {
      const old = charts.get(id);
      if (old && old.plot) old.plot.destroy();
      const chart = {
        id, title: spec.title, yLabel: spec.yLabel || "", xLabel: spec.xLabel || "step", logY: !!spec.logY,
        transform: spec.transform || "none", height: spec.height || 260, series: new Map(), plot: null, plotNames: [], zoomed: false,
        info: spec.infoId ? document.getElementById(spec.infoId) : null,
      };
      if (chart.info && !old) chart.info.textContent = "waiting for the first points"; // not a blank box while a run starts
      charts.set(id, chart);
    },
    // points: [[seriesName, x, y], ...]; for each series, x must increase; points at or before a series' last x are dropped.
    add(id, points) {
      const chart = charts.get(id);
      if (!chart) return;
      for (const [name, x, y] of points) {
        let s = chart.series.get(name);
        if (!s) { s = { xs: [], ys: [] }; chart.series.set(name, s); }
        if (s.xs.length && x <= s.xs[s.xs.length - 1]) continue;
        s.xs.push(x); s.ys.push(y);
      }
      schedule(chart);
    },
    setTransform(id, transform, yLabel) { const c = charts.get(id); if (c) { c.transform = transform; if (yLabel) c.yLabel = yLabel; c.plotNames = []; schedule(c); } },
    yLabel(id) { const c = charts.get(id); return c && c.plot ? c.plot.axes[1].label : null; },
    formatValue,
    seriesColor(id, name) { const c = charts.get(id); const k = c && c.plot ? c.plotNames.indexOf(name) : -1; return k < 0 ? null : c.plot.series[k + 1].stroke(); },
    setLogY(id, logY) { const c = charts.get(id); if (c) { c.logY = logY; c.plotNames = []; schedule(c); } },
    pointCount(id) { const c = charts.get(id); return c ? [...c.series.values()].reduce((n, s) => n + s.xs.length, 0) : 0; },
    seriesNames(id) { const c = charts.get(id); return c ? [...c.series.keys()] : []; },
    lastX(id) { const c = charts.get(id); return c ? Math.max(-1, ...[...c.series.values()].map(s => s.xs[s.xs.length - 1] ?? -1)) : -1; },
    destroy(id) { const c = charts.get(id); if (c && c.plot) c.plot.destroy(); charts.delete(id); },

    // A size x size matrix of correlations in [-1, 1]: blue (-1) - white (0) - red (+1).
    heatmap(canvasId, size, data) {
      const canvas = document.getElementById(canvasId);
      if (!canvas) return;
      const ctx = canvas.getContext("2d");
      const image = ctx.createImageData(size, size);
      for (let i = 0; i < size * size; i++) {
        const v = Math.max(-1, Math.min(1, data[i]));
        const r = v > 0 ? 255 : Math.round(255 * (1 + v)), b = v < 0 ? 255 : Math.round(255 * (1 - v)), g = Math.round(255 * (1 - Math.abs(v)));
        image.data.set([r, g, b, 255], i * 4);
      }
      const off = document.createElement("canvas");
      off.width = size; off.height = size;
      off.getContext("2d").putImageData(image, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
    },
  };
})();
