// Live charts for IdentityInit: uPlot line charts fed incrementally from Blazor, with min/max-preserving downsampling,
// and canvas heatmaps. One global object, iiCharts; every function takes the id of the chart's container element.
(function () {
  const charts = new Map();
  let dark = false; // axes, ticks and grid in light grey on the dark theme
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

  // Tick labels: as many significant digits as neighbouring ticks need to differ (0.9999998 vs 0.9999999), at least 4.
  function formatTicks(vals) {
    const finite = vals.filter(v => v != null && Number.isFinite(v));
    const step = finite.length > 1 ? Math.abs(finite[1] - finite[0]) : 0;
    const mag = Math.max(...finite.map(Math.abs), 0);
    const digits = step > 0 && mag > 0 ? Math.min(15, Math.max(4, Math.ceil(Math.log10(mag / step)) + 1)) : 4;
    return vals.map(v => {
      if (v == null) return "";
      const a = Math.abs(v);
      // Exponents with the digits neighbours need, less the mantissa's trailing zeros: 1e-4 on a log axis, not 1.000e-4;
      // -6.1e-4 and -6.2e-4, not -6e-4 twice.
      return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(digits - 1).replace(/\.?0+e/, "e") : String(+v.toPrecision(digits));
    });
  }

  // An axis as deep as its tick labels need (a fixed size let "-1.2346e-12" run into the y title and rotated layer names
  // into "layer"): the widest label across a y axis, a rotated label's height below an x axis. uPlot asks again once the
  // ticks are laid out (cycleNum); the first answer stands from the second cycle on, so the layout settles.
  function labelWidth(u, axis, labels) {
    u.ctx.font = Array.isArray(axis.font) ? axis.font[0] : axis.font || "12px sans-serif"; // uPlot keeps [css, px] once set up
    return (labels || []).reduce((w, v) => Math.max(w, u.ctx.measureText(v).width / devicePixelRatio), 0);
  }
  const axisSize = (degrees = 0) => (u, values, axisIdx, cycleNum) => {
    const axis = u.axes[axisIdx];
    if (cycleNum > 1) return axis._size;
    const widest = labelWidth(u, axis, values), rad = degrees * Math.PI / 180;
    const depth = axis.side % 2 === 1 ? widest : widest * Math.abs(Math.sin(rad)) + axis.font[1] * Math.cos(rad);
    return Math.max(50, Math.ceil(depth + (axis.ticks.size ?? 10) + (axis.gap ?? 5) + 4));
  };

  // uPlot 1.6.32 collapses a y range narrower than ~1e-6 of its magnitude to one value and then loops forever laying out
  // ticks 1e-16 apart (RangeError: Invalid array length after ~50 s with the main thread blocked): [1, 0.9999999999, 1]
  // is a correlation leaving 1, the moment symmetry breaks. So a linear y range is never narrower than that.
  const minRelativeSpan = 1e-5;
  function yRange(u, min, max) {
    if (min == null || max == null || !Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
    const minSpan = Math.max(Math.abs(min), Math.abs(max)) * minRelativeSpan || 1; // all zeros: [-0.5, 0.5] and padding
    if (max - min < minSpan) { const mid = (min + max) / 2; min = mid - minSpan / 2; max = mid + minSpan / 2; }
    const [lo, hi] = uPlot.rangeNum(min, max, 0.1, true);
    return hi - lo >= minSpan ? [lo, hi] : [min - minSpan * 0.1, max + minSpan * 0.1];
  }

  // Hover values: 4 significant digits, scientific when small or large (a spread of 1e-9 must not read 0).
  // Colours come from the palette by index, never from a hash of the name (hashes collided: conv1, fc and a block shared one).
  // One run: a line's colour is its name's rank among the chart's names (sorted, so reload and arrival order agree). Several
  // runs (compare): the run's index in the page's run list, the same on every chart. A symmetry-break marker
  // ("\u25B2 layer", "\u25B2 run \u00B7 layer") and a band ("name lo"/"name hi") take their line's colour.
  function baseOf(name) { return name.replace(/^\u25B2 /, "").replace(/ \(raw\)$/, "").replace(/ (lo|hi)$/, ""); }
  function colorOf(chart, name) {
    const key = baseOf(name);
    const run = runOf(chart, key);
    const index = run !== null ? chart.runs.indexOf(run) : (chart.colorKeys || []).indexOf(key);
    return palette[Math.max(0, index) % palette.length];
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

  // Exponential moving average with TensorBoard's debiasing (the first points are not pulled toward 0); gaps stay gaps.
  function smooth(ys, alpha) {
    if (!(alpha > 0)) return ys;
    const out = new Array(ys.length);
    let last = 0, n = 0;
    for (let i = 0; i < ys.length; i++) {
      const v = ys[i];
      if (v == null || !Number.isFinite(v)) { out[i] = null; continue; }
      last = last * alpha + (1 - alpha) * v; n++;
      out[i] = last / (1 - Math.pow(alpha, n));
    }
    return out;
  }

  // The layer of a per-layer series label ("run · layer", "layer", "▲ layer", "layer lo"), for the layer picker.
  function layerOf(name) { return name.replace(/^.* · /, "").replace(/^▲ /, "").replace(/ (lo|hi)$/, ""); }
  // The run of a series label "run · series": the longest of the page's run labels it starts with (a run's name may itself
  // contain " · ", as study and sweep runs' names do); null on a single-run page.
  function runOf(chart, name) {
    let best = null;
    for (const r of chart.runs || []) if (name.startsWith(r + " \u00B7 ") && (best === null || r.length > best.length)) best = r;
    return best;
  }

  function build(chart) {
    const el = document.getElementById(chart.id);
    if (!el) return;
    const picked = [...chart.series.keys()].filter(n => !chart.layers || chart.layers.includes(layerOf(n)));
    // Symmetry-break markers are not series: each is a dashed vertical rule at its step in its line's colour (a point
    // would float off a line drawn only every MetricsEvery steps, and would double the legend).
    chart.markers = picked.filter(n => n.startsWith("\u25B2 ")).map(n => ({ line: n.slice(2), xs: chart.series.get(n).xs }));
    const shownNames = picked.filter(n => !n.startsWith("\u25B2 "));
    chart.colorKeys = [...new Set([...chart.series.keys()].map(baseOf))].sort();
    const width = Math.max(320, el.clientWidth || 600);
    const buckets = Math.max(100, Math.floor(width));
    const tables = [];
    const names = []; // what uPlot draws: with smoothing on, each line's raw values come first, faint, then the smoothed line
    let shown = 0, total = 0;
    for (const name of shownNames) {
      const s = chart.series.get(name);
      // A log axis cannot show 0 or less (identical channels have spread 0): a gap, not a line to -infinity.
      const ys = s.ys.map(v => v == null ? null : transformValue(chart, v)).map(v => chart.logY && !(v > 0) ? null : v);
      const [dx, dy] = downsample(s.xs, ys, buckets);
      shown += dx.length; total += s.xs.length;
      const smoothed = chart.smoothing > 0 && !name.startsWith("\u25B2 ") && !/ (lo|hi)$/.test(name);
      if (smoothed) { tables.push([dx, dy]); names.push(name + " (raw)"); tables.push([dx, smooth(dy, chart.smoothing)]); }
      else tables.push([dx, dy]);
      names.push(name);
    }
    if (names.length === 0) { // nothing to draw (or every series filtered out): no empty axes, just the caption
      if (chart.plot) { chart.plot.destroy(); chart.plot = null; chart.plotNames = []; }
      if (chart.info) chart.info.textContent = chart.series.size === 0 ? chart.emptyText : "no series of the picked layers";
      showTitle(chart);
      return;
    }
    const data = uPlot.join(tables);
    // Stops at the first finite value: a frame of a live chart must not walk every point again.
    const anyFinite = shownNames.some(name => chart.series.get(name).ys.some(v => v != null && Number.isFinite(v)));
    if (chart.info) chart.info.textContent = total === 0 ? chart.emptyText
      : !anyFinite ? `${total} points, none finite (NaN or \u00B1\u221E, e.g. the diversity of identical channels, log of 0): nothing to draw`
      : total === shown ? `${total} points` : `showing ${shown} of ${total} points (min/max kept)`;
    if (chart.info && chart.overview) chart.info.textContent += chart.detailRange ? " · full resolution in the zoomed window" : " · zoom in for full resolution";
    const sameSeries = chart.plot && chart.plotNames.length === names.length && chart.plotNames.every((n, k) => n === names[k])
      && chart.plotSmoothing === chart.smoothing;
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
      scales: {
        // The x range takes in the break markers too (a layer may break before its first plotted step), unless zoomed.
        x: { time: chart.timeX, range: (u, min, max) => {
          if (chart.zoomed) return [min, max];
          if (chart.xNames) return [-0.5, Math.max(0.5, chart.xNames.length - 0.5)];
          for (const m of chart.markers || []) for (const x of m.xs) { if (x < min || min == null) min = x; if (x > max || max == null) max = x; }
          return min === max ? [min - 1, max + 1] : [min, max];
        } },
        y: chart.logY ? { distr: 3 } : { range: yRange },
      },
      axes: [chart.timeX ? { label: chart.xLabel }
             // Categories (layers against depth): one tick per name, the name as its label.
             : chart.xNames ? { label: chart.xLabel, size: axisSize(-25), splits: () => chart.xNames.map((_, i) => i),
                                values: (u, vals) => vals.map(v => chart.xNames[Math.round(v)] ?? ""), rotate: -25 }
             : { label: chart.xLabel, values: (u, vals) => formatTicks(vals) },
             { label: chart.yLabel, size: axisSize(), values: (u, vals) => formatTicks(vals) }]
        .map(a => dark ? { ...a, stroke: "#ccc", grid: { stroke: "#ffffff1f" }, ticks: { stroke: "#ffffff1f" } } : a),
      // A rotated layer name runs right of its tick: room on the right (p) for the one that reaches furthest past the
      // categories after it. Tick k sits at (k + 0.5) / n of the plot's width W = width - (y axis) - p, so label k fits
      // when p >= (w_k cos - (width - y axis) f) / (1 - f), with f = (n - k - 0.5) / n.
      padding: chart.xNames ? [null, (u, side) => {
        if (side !== 1) return null;
        const n = chart.xNames.length, cos = Math.cos(25 * Math.PI / 180), inner = width - (u.axes[1]._size || 60);
        const needs = chart.xNames.map((name, k) => {
          const f = (n - k - 0.5) / n;
          return (labelWidth(u, u.axes[0], [name]) * cos - inner * f) / (1 - f);
        });
        return Math.max(12, Math.ceil(Math.max(...needs)) + 8); // + the y axis's own padding, which uPlot settles later
      }, null, null] : undefined,
      legend: { live: true },
      // Hovering one chart shows the same x on every chart of the page (all share the x axis the page chose).
      cursor: { drag: { x: true, y: false }, sync: { key: "iiCharts" } },
      series: [{ label: chart.xLabel }].concat(names.map((n, k) => {
        const band = / (lo|hi)$/.test(n);
        const raw = n.endsWith(" (raw)");
        const base = raw ? n.slice(0, -6) : n;
        // Comparing runs: a run keeps one colour on every chart; within it, its series (train, test) differ by dash, and
        // the dash also shifts by run so that identical runs drawn on top of each other still show both.
        const color = colorOf(chart, base);
        const s = { label: n, show: !hidden.has(base), stroke: raw ? color + "40" : color, width: band || raw ? 1 : 1.5, spanGaps: true,
                    value: (u, v) => formatValue(v) };
        const dashes = [null, [8, 4], [2, 3], [10, 3, 2, 3]];
        const run = runOf(chart, base);
        const dash = run === null ? 0 : chart.runs.indexOf(run)
          + [...new Set(chart.colorKeys.filter(k => runOf(chart, k) === run))].indexOf(base);
        // A seed band is a shaded area in its arm's colour (uPlot's bands below), not two more lines: lo/hi draw nothing.
        if (band) { s.width = 0; s.points = { show: false }; }
        else if (dash % dashes.length > 0) s.dash = dashes[dash % dashes.length];
        if (!band && chart.series.get(base).xs.length < 3) s.points = { show: true, size: 5 };
        return s;
      })),
      hooks: {
        draw: [u => drawMarkers(chart, u)],
        setSelect: [u => { // a drag-zoom by the user
          if (u.select.width > 0) zoomed(chart, u.posToVal(u.select.left, "x"), u.posToVal(u.select.left + u.select.width, "x"));
        }],
      },
    };
    const bands = [];
    names.forEach((n, k) => { if (n.endsWith(" hi")) { const lo = names.indexOf(n.slice(0, -3) + " lo"); if (lo >= 0) bands.push({ series: [k + 1, lo + 1], fill: colorOf(chart, n) + "33" }); } });
    if (bands.length) opts.bands = bands;
    chart.bandFills = bands.map(b => b.fill);
    chart.plotNames = names;
    chart.plotSmoothing = chart.smoothing;
    el.querySelector(":scope > .chart-pending")?.remove();
    chart.plot = new uPlot(opts, data, el);
    // The raw companions of smoothed lines stay out of the legend: one entry per line.
    el.querySelectorAll(".u-legend tr.u-series").forEach((row, k) => { if (k > 0 && /( \(raw\)| lo| hi)$/.test(names[k - 1])) row.style.display = "none"; });
    el.ondblclick = () => { chart.zoomed = false; chart.detailRange = null; schedule(chart); };
    if (scale) chart.plot.setScale("x", { min: scale[0], max: scale[1] });
    if (chart.pendingZoom) {
      const [min, max] = chart.pendingZoom;
      chart.pendingZoom = null;
      chart.plot.setScale("x", { min, max });
      zoomed(chart, min, max);
    }
  }

  // blue (-1) - white (0) - red (+1) as [r, g, b, a]; grey where the correlation is undefined
  function heatColor(value) {
    if (!Number.isFinite(value)) return [150, 150, 150, 255]; // undefined: a constant channel
    const v = Math.max(-1, Math.min(1, value));
    return [v > 0 ? 255 : Math.round(255 * (1 + v)), Math.round(255 * (1 - Math.abs(v))), v < 0 ? 255 : Math.round(255 * (1 - v)), 255];
  }

  function heatLayout(canvas) {
    const side = Math.min(canvas.width - 110, canvas.height - 46);
    return { matrix: [40, 10, side, side], bar: [40 + side + 16, 10, 14, side] };
  }

  // A chart without a plot (no points yet, or none of the picked layers) still shows its title, where uPlot puts it.
  function showTitle(chart) {
    const el = document.getElementById(chart.id);
    if (!el || chart.plot || el.querySelector(":scope > .chart-pending")) return;
    const title = document.createElement("div");
    title.className = "u-title chart-pending";
    title.textContent = chart.title;
    el.replaceChildren(title);
  }

  function drawMarkers(chart, u) {
    const ctx = u.ctx, top = u.bbox.top, bottom = u.bbox.top + u.bbox.height, dpr = devicePixelRatio || 1;
    ctx.save();
    ctx.lineWidth = 1.5 * dpr;
    for (const m of chart.markers || []) {
      const k = chart.plotNames.indexOf(m.line);
      if (k >= 0 && !u.series[k + 1].show) continue; // its line is hidden from the legend
      const color = colorOf(chart, m.line);
      ctx.strokeStyle = color; ctx.fillStyle = color;
      ctx.setLineDash([4 * dpr, 3 * dpr]);
      for (const x of m.xs) {
        const px = u.valToPos(x, "x", true);
        if (px < u.bbox.left || px > u.bbox.left + u.bbox.width) continue;
        ctx.beginPath(); ctx.moveTo(px, top); ctx.lineTo(px, bottom); ctx.stroke();
        ctx.beginPath(); ctx.moveTo(px, top); ctx.lineTo(px - 5 * dpr, top - 8 * dpr); ctx.lineTo(px + 5 * dpr, top - 8 * dpr); ctx.closePath(); ctx.fill();
      }
    }
    ctx.restore();
  }

  // Zoomed to [min, max]: a chart drawn from the server's buckets asks it for that window at full resolution.
  function zoomed(chart, min, max) {
    chart.zoomed = true;
    if (chart.dotnet && chart.overview) chart.dotnet.invokeMethodAsync("LoadWindow", chart.key, min, max).catch(() => {});
  }

  function schedule(chart) {
    if (chart.pending) return;
    chart.pending = true;
    requestAnimationFrame(() => { chart.pending = false; build(chart); });
  }

  // The smoothing slider of a set of charts (input[data-smoothing=prefix], chart ids "prefix-key") lives in the browser:
  // a chart created later (another x axis) starts from its value, and sliding redraws without asking the server.
  const sliderFor = id => document.querySelector(`input[data-smoothing="${id.split("-")[0]}"]`);
  const smoothingFor = id => { const slider = sliderFor(id); return slider ? Number(slider.value) : 0; };
  document.addEventListener("input", e => {
    const slider = e.target instanceof Element ? e.target.closest("input[data-smoothing]") : null;
    if (!slider) return;
    const alpha = Number(slider.value);
    const shown = slider.parentElement.querySelector("output");
    if (shown) shown.textContent = alpha.toFixed(2);
    charts.forEach(c => { if (c.id.startsWith(slider.dataset.smoothing + "-")) { c.smoothing = alpha; schedule(c); } });
  });

  // Charts of a prerendered page (div[data-chart-src]) fetch their history over HTTP as soon as the HTML is parsed, the
  // cards in view first, and draw it without waiting for the interactive circuit. The circuit's render replaces those
  // elements; its create() names the same src, adopts the chart's points and learns the last step read (upTo), from
  // where it reads the rest itself.
  const prefetched = new Map(); // src -> { chart, ready: Promise<upTo | null> }
  function prefetch() {
    const inView = el => { const r = el.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight ? 1 : 0; };
    const els = [...document.querySelectorAll("[data-chart-src]")].filter(el => !prefetched.has(el.dataset.chartSrc));
    els.sort((a, b) => inView(b) - inView(a)); // stable: page order within each group
    for (const el of els) {
      const first = inView(el) === 1;
      let spec;
      try { spec = JSON.parse(el.dataset.chartSpec); } catch { continue; }
      window.iiCharts.create(el.id, spec);
      const chart = charts.get(el.id);
      const ready = fetch(el.dataset.chartSrc, { headers: { accept: "application/json" }, credentials: "same-origin" })
        .then(r => r.ok ? r.json() : null)
        .then(h => {
          if (!h) return null;
          addTo(chart, h.columns, h.overview);
          return h.upTo ?? -1;
        })
        .catch(() => null);
      prefetched.set(el.dataset.chartSrc, { chart, ready });
      if (first) inViewDrawn.push(ready.then(() => new Promise(done => requestAnimationFrame(() => setTimeout(done)))));
    }
  }
  const inViewDrawn = []; // per card in view: settles once its history is drawn (the frame after schedule()'s build)

  function addTo(chart, columns, overview) {
    if (overview) chart.overview = true;
    for (const [name, xs, ys] of columns) {
      let s = chart.series.get(name);
      if (!s) { s = { xs: [], ys: [] }; chart.series.set(name, s); }
      for (let i = 0; i < xs.length; i++) {
        if (s.xs.length && xs[i] <= s.xs[s.xs.length - 1]) continue;
        s.xs.push(xs[i]); s.ys.push(ys[i]);
      }
    }
    schedule(chart);
  }

  window.iiCharts = {
    // Settles once the prerendered cards that were in view have drawn their history, or after limitMs: app.js starts
    // the Blazor circuit then, so its start-up work does not hold the main thread while the first charts wait to draw.
    inViewDrawn(limitMs) {
      return Promise.race([Promise.allSettled(inViewDrawn), new Promise(done => setTimeout(done, limitMs))]);
    },
    // Returns, for a chart that adopts a prefetched one (spec.src), a promise of the last step its history was read to
    // (-1: none stored then; null: the fetch failed, read it all); otherwise null.
    create(id, spec) {
      const old = charts.get(id);
      if (old && old.plot) old.plot.destroy();
      const pre = spec.src ? prefetched.get(spec.src) : null;
      if (pre) prefetched.delete(spec.src);
      const chart = {
        id, title: spec.title, yLabel: spec.yLabel || "", xLabel: spec.xLabel || "step", logY: !!spec.logY, timeX: !!spec.timeX,
        transform: spec.transform || "none", height: spec.height || 260, series: new Map(), plot: null, plotNames: [], zoomed: false,
        info: spec.infoId ? document.getElementById(spec.infoId) : null, key: spec.key, dotnet: spec.dotnet || null,
        smoothing: smoothingFor(id), layers: spec.layers || null, overview: false, detailRange: null, markers: [],
        emptyText: spec.emptyText || "waiting for the first points", runs: spec.runs || [], xNames: spec.xNames || null,
      };
      if (chart.info) chart.info.textContent = chart.emptyText; // not a blank box while a run starts
      charts.set(id, chart);
      if (!pre) { showTitle(chart); return null; }
      // The prefetched chart's element is gone (replaced by the circuit's render): its points move here, and a fetch
      // still under way fills the same series map.
      const from = pre.chart;
      // A zoom made before the circuit was up (nothing could fetch its detail then) carries over and fetches it now.
      if (from.zoomed && from.plot) { chart.zoomed = true; chart.pendingZoom = [from.plot.scales.x.min, from.plot.scales.x.max]; }
      if (from.plot) { from.plot.destroy(); from.plot = null; }
      if (from.id !== id) charts.delete(from.id);
      chart.series = from.series;
      chart.overview = from.overview;
      schedule(chart);
      return pre.ready.then(upTo => { chart.overview = chart.overview || from.overview; schedule(chart); return upTo; });
    },
    // columns: [[seriesName, xs, ys], ...], each series' xs increasing; points at or before a series' last x are dropped.
    // overview: these columns are the server's min/max per bucket; a drag-zoom then fetches the window (LoadWindow).
    add(id, columns, overview) {
      const chart = charts.get(id);
      if (chart) addTo(chart, columns, overview);
    },
    // The full-resolution points of [min, max]: they replace what the series held in that window.
    detail(id, columns, min, max) {
      const chart = charts.get(id);
      if (!chart) return;
      for (const [name, xs, ys] of columns) {
        const s = chart.series.get(name);
        if (!s) continue;
        let lo = 0; while (lo < s.xs.length && s.xs[lo] < min) lo++;
        let hi = lo; while (hi < s.xs.length && s.xs[hi] <= max) hi++;
        const keep = xs.map((x, i) => i).filter(i => xs[i] >= min && xs[i] <= max);
        s.xs.splice(lo, hi - lo, ...keep.map(i => xs[i]));
        s.ys.splice(lo, hi - lo, ...keep.map(i => ys[i]));
      }
      chart.detailRange = [min, max];
      schedule(chart);
    },
    setDark(on) { dark = !!on; document.documentElement.dataset.theme = dark ? "dark" : "light"; charts.forEach(c => { c.plotNames = []; schedule(c); }); },
    isDark() { return dark; },
    setLayers(id, layers) { const c = charts.get(id); if (c) { c.layers = layers && layers.length ? layers : null; schedule(c); } },
    layers(id) { const c = charts.get(id); return c ? [...new Set([...c.series.keys()].map(layerOf))].sort() : []; },
    legendCount(id) { const c = charts.get(id); return c && c.plot ? [...document.getElementById(id).querySelectorAll(".u-legend tr.u-series")].filter((r, k) => k > 0 && r.style.display !== "none").length : 0; },
    values(id, name) { const c = charts.get(id); const s = c && c.series.get(name); return s ? [s.xs, s.ys] : null; },
    drawn(id, name) { const c = charts.get(id); if (!c || !c.plot) return null; const k = c.plotNames.indexOf(name); return k < 0 ? null : [c.plot.data[0], c.plot.data[k + 1]]; },
    zoom(id, min, max) { // what a drag does, for scripts and tests
      const c = charts.get(id);
      if (!c || !c.plot) return;
      c.plot.setScale("x", { min, max });
      zoomed(c, min, max);
    },
    setTransform(id, transform, yLabel) { const c = charts.get(id); if (c) { c.transform = transform; if (yLabel) c.yLabel = yLabel; c.plotNames = []; schedule(c); } },
    yLabel(id) { const c = charts.get(id); return c && c.plot ? c.plot.axes[1].label : null; },
    plot(id) { const c = charts.get(id); return c ? c.plot : null; }, // the uPlot instance, for tests of its layout
    formatValue,
    setEmptyText(id, text) { const c = charts.get(id); if (c) { c.emptyText = text; if (c.info && c.series.size === 0) c.info.textContent = text; } },
    markers(id) { const c = charts.get(id); return c ? (c.markers || []).map(m => ({ line: m.line, xs: m.xs, color: colorOf(c, m.line) })) : []; },
    xRange(id) { const c = charts.get(id); return c && c.plot ? [c.plot.scales.x.min, c.plot.scales.x.max] : null; },
    seriesDash(id, name) { const c = charts.get(id); const k = c && c.plot ? c.plotNames.indexOf(name) : -1; return k < 0 ? null : (c.plot.series[k + 1].dash || []); },
    cursorX(id) { const c = charts.get(id); return c && c.plot && c.plot.cursor.idx != null ? c.plot.data[0][c.plot.cursor.idx] : null; },
    bandFills(id) { const c = charts.get(id); return c && c.plot ? c.bandFills || [] : []; },
    seriesWidth(id, name) { const c = charts.get(id); const k = c && c.plot ? c.plotNames.indexOf(name) : -1; return k < 0 ? null : c.plot.series[k + 1].width; },
    seriesColor(id, name) { const c = charts.get(id); const k = c && c.plot ? c.plotNames.indexOf(name) : -1; return k < 0 ? null : c.plot.series[k + 1].stroke(); },
    setLogY(id, logY) { const c = charts.get(id); if (c) { c.logY = logY; c.plotNames = []; schedule(c); } },
    logY(id) { const c = charts.get(id); return c ? c.logY : null; },
    pointCount(id) { const c = charts.get(id); return c ? [...c.series.values()].reduce((n, s) => n + s.xs.length, 0) : 0; },
    xNames(id) { const c = charts.get(id); return c ? c.xNames : null; },
    seriesNames(id) { const c = charts.get(id); return c ? [...c.series.keys()] : []; },
    lastX(id) { const c = charts.get(id); return c ? Math.max(-1, ...[...c.series.values()].map(s => s.xs[s.xs.length - 1] ?? -1)) : -1; },
    destroy(id) { const c = charts.get(id); if (c && c.plot) c.plot.destroy(); charts.delete(id); },

    // A size x size matrix of correlations in [-1, 1]: blue (-1) - white (0) - red (+1), with its channel axes
    // (block indices when the matrix was block-averaged) and a colour bar.
    heatmap(canvasId, size, data) {
      const canvas = document.getElementById(canvasId);
      if (!canvas) return;
      const ctx = canvas.getContext("2d");
      const image = ctx.createImageData(size, size);
      for (let i = 0; i < size * size; i++) image.data.set(heatColor(data[i]), i * 4);
      const off = document.createElement("canvas");
      off.width = size; off.height = size;
      off.getContext("2d").putImageData(image, 0, 0);
      const L = heatLayout(canvas);
      const ink = dark ? "#ccc" : "#333";
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(off, L.matrix[0], L.matrix[1], L.matrix[2], L.matrix[3]);
      ctx.strokeStyle = ink; ctx.lineWidth = 1;
      ctx.strokeRect(L.matrix[0] - 0.5, L.matrix[1] - 0.5, L.matrix[2] + 1, L.matrix[3] + 1);
      // Colour bar: +1 at the top, -1 at the bottom.
      const [bx, by, bw, bh] = L.bar;
      for (let y = 0; y < bh; y++) {
        const [r, g, b] = heatColor(1 - 2 * y / (bh - 1));
        ctx.fillStyle = `rgb(${r},${g},${b})`; ctx.fillRect(bx, by + y, bw, 1);
      }
      ctx.strokeRect(bx - 0.5, by - 0.5, bw + 1, bh + 1);
      ctx.fillStyle = ink; ctx.font = "12px system-ui, sans-serif";
      ctx.textAlign = "left"; ctx.textBaseline = "middle";
      for (const [v, text] of [[1, "+1"], [0, "0"], [-1, "\u22121"]]) ctx.fillText(text, bx + bw + 4, by + (1 - v) / 2 * (bh - 1));
      // Channel ticks: first, middle, last row/column.
      const [mx, my, mw, mh] = L.matrix;
      const ticks = [...new Set([0, Math.floor((size - 1) / 2), size - 1])];
      ctx.textAlign = "center"; ctx.textBaseline = "top";
      for (const t of ticks) ctx.fillText(String(t), mx + (t + 0.5) * mw / size, my + mh + 4);
      ctx.textAlign = "right"; ctx.textBaseline = "middle";
      for (const t of ticks) ctx.fillText(String(t), mx - 4, my + (t + 0.5) * mh / size);
      ctx.textAlign = "center"; ctx.textBaseline = "bottom";
      ctx.fillText("channel", mx + mw / 2, canvas.height - 2);
      ctx.save(); ctx.translate(12, my + mh / 2); ctx.rotate(-Math.PI / 2); ctx.textBaseline = "middle"; ctx.fillText("channel", 0, 0); ctx.restore();
      canvas.dataset.size = String(size);
    },
    // Where heatmap() draws on a canvas: matrix and colour bar as [x, y, width, height], for scripts and tests.
    heatLayout(canvasId) { const canvas = document.getElementById(canvasId); return canvas ? heatLayout(canvas) : null; },
  };

  // The page's scripts sit after its markup: the prerendered cards are there already, so their fetches start now, not
  // after the scripts that follow (Blazor's, MudBlazor's) have loaded; a page parsed later looks again when it is done.
  prefetch();
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", prefetch);
})();
