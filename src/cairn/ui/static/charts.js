// Metric charts: one Plotly chart per key, data from the JSON history API (downsampled on
// the server to at most ~2,000 points), with smoothing, a log scale, time on x, zoom
// (Plotly's own), and a refresh every few seconds while the run is running.
"use strict";

(function (Cairn) {
  const MAX_POINTS = 2000;
  const OVERLAY_POINTS = 1000;
  const LIVE_MS = 5000;

  Cairn.palette = function () {
    const style = getComputedStyle(document.documentElement);
    return Array.from({ length: 10 }, (_, i) => style.getPropertyValue("--c" + i).trim() || "#3557c9");
  };

  Cairn.plotReady = function () {
    return typeof window.Plotly !== "undefined";
  };

  Cairn.chartNote = function (node, text) {
    node.replaceChildren(Cairn.el("div", { className: "chart-note", text: text }));
  };

  Cairn.baseLayout = function (extra) {
    const font = getComputedStyle(document.body).fontFamily;
    const axis = { gridcolor: "#eef0f3", zeroline: false, linecolor: "#d0d5dd", tickfont: { size: 11 }, automargin: true };
    return Object.assign({
      margin: { l: 8, r: 10, t: 6, b: 8 },
      font: { family: font, size: 11.5, color: "#475467" },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      xaxis: Object.assign({}, axis),
      yaxis: Object.assign({}, axis),
      hovermode: "x unified",
      hoverlabel: { bgcolor: "#ffffff", bordercolor: "#d0d5dd", font: { color: "#1d2433", family: font } },
      showlegend: false,
    }, extra || {});
  };

  Cairn.plotConfig = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  // TensorBoard's smoothing: an exponential moving average, debiased at the start.
  Cairn.smooth = function (values, weight) {
    if (!weight) return values;
    let last = 0, debias = 0;
    return values.map(function (v) {
      if (!Number.isFinite(v)) return v;
      last = last * weight + (1 - weight) * v;
      debias = debias * weight + (1 - weight);
      return last / debias;
    });
  };

  Cairn.history = function (runId, key, maxPoints) {
    const url = "/api/v1/runs/" + encodeURIComponent(runId) + "/metrics/history?key=" +
      encodeURIComponent(key) + "&max_points=" + (maxPoints || MAX_POINTS);
    return Cairn.getJSON(url);
  };

  // Shared controls (smoothing, log scale, time on x) for every chart on the page.
  function controls() {
    const box = document.querySelector("[data-chart-controls]");
    const state = { smoothing: 0, log: false, time: false, listeners: [] };
    if (!box) return state;
    const slider = box.querySelector("[data-smoothing]");
    const out = box.querySelector("[data-smoothing-out]");
    const log = box.querySelector("[data-logscale]");
    const time = box.querySelector("[data-xtime]");
    const changed = () => state.listeners.forEach((f) => f());
    if (slider) slider.addEventListener("input", function () {
      state.smoothing = Number(slider.value);
      out.textContent = state.smoothing.toFixed(2);
      slider.setAttribute("aria-valuetext", state.smoothing.toFixed(2));
      changed();
    });
    if (log) log.addEventListener("change", function () { state.log = log.checked; changed(); });
    if (time) time.addEventListener("change", function () { state.time = time.checked; changed(); });
    return state;
  }

  function traces(series, state, color, name, showRaw) {
    const x = state.time ? series.timestamps.map((t) => new Date(t)) : series.steps;
    const smoothed = Cairn.smooth(series.values, state.smoothing);
    const out = [];
    if (state.smoothing > 0 && showRaw) {
      out.push({ x: x, y: series.values, type: "scatter", mode: "lines", name: name + " (raw)",
        line: { color: color, width: 1 }, opacity: 0.22, hoverinfo: "skip" });
    }
    const single = series.values.length === 1;
    out.push({ x: x, y: smoothed, type: "scatter", mode: single ? "markers" : "lines", name: name,
      line: { color: color, width: 1.8 }, marker: { color: color, size: 6 },
      hovertemplate: "%{y:.4g}<extra>" + name.replace(/</g, "&lt;") + "</extra>" });
    return out;
  }

  function layoutFor(state, legend) {
    const layout = Cairn.baseLayout({ showlegend: !!legend });
    layout.yaxis.type = state.log ? "log" : "linear";
    layout.xaxis.type = state.time ? "date" : "linear";
    layout.xaxis.title = { text: state.time ? "" : "step", font: { size: 11 }, standoff: 4 };
    if (legend) layout.legend = { orientation: "h", y: -0.18, font: { size: 11 } };
    return layout;
  }

  function lazily(nodes, load) {
    if (!("IntersectionObserver" in window)) { nodes.forEach(load); return; }
    const seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) { seen.unobserve(entry.target); load(entry.target); }
      });
    }, { rootMargin: "300px" });
    nodes.forEach((n) => seen.observe(n));
  }

  function caption(node, series) {
    const fig = node.closest("figure");
    if (!fig) return;
    let note = fig.querySelector(".points-note");
    if (!note) {
      note = Cairn.el("span", { className: "points-note muted small" });
      fig.querySelector("figcaption").append(note);
    }
    note.textContent = series.downsampled
      ? Cairn.formatNumber(series.values.length) + " of " + Cairn.formatNumber(series.total_count) + " points"
      : Cairn.formatNumber(series.total_count) + " point" + (series.total_count === 1 ? "" : "s");
  }

  // One run's charts: [data-run-charts data-run=ID data-live=0|1] holding [data-metric=KEY].
  function runCharts(state) {
    const palette = Cairn.palette();
    const containers = document.querySelectorAll("[data-run-charts]");
    const loaded = new Map();
    containers.forEach(function (box) {
      const runId = box.dataset.run;
      const nodes = Array.from(box.querySelectorAll("[data-metric]"));
      lazily(nodes, async function (node) {
        try {
          const series = await Cairn.history(runId, node.dataset.metric);
          loaded.set(node, { runId: runId, series: series });
          draw(node);
        } catch (error) {
          Cairn.chartNote(node, "Could not load this metric: " + error.message);
        }
      });
    });
    function draw(node) {
      const item = loaded.get(node);
      if (!item) return;
      caption(node, item.series);
      Plotly.react(node, traces(item.series, state, palette[0], item.series.key, true), layoutFor(state, false), Cairn.plotConfig);
    }
    state.listeners.push(() => loaded.forEach((_, node) => draw(node)));
    const live = Array.from(containers).some((b) => b.dataset.live === "1");
    if (live) {
      const runId = containers[0].dataset.run;
      const timer = setInterval(async function () {
        try {
          for (const [node, item] of loaded) {
            item.series = await Cairn.history(item.runId, node.dataset.metric);
            draw(node);
          }
          const run = await Cairn.getJSON("/api/v1/runs/" + encodeURIComponent(runId));
          if (run.status !== "running") {
            clearInterval(timer);
            const badge = document.querySelector("[data-live-badge]");
            if (badge) badge.replaceChildren("The run " + run.status + ". ", Cairn.el("a", { href: window.location.pathname, text: "Reload" }), " for its final summary.");
          }
        } catch (_) { /* a missed refresh is retried on the next tick */ }
      }, LIVE_MS);
    }
  }

  // Several runs overlaid: [data-overlay-charts data-runs="a,b"] holding [data-metric=KEY].
  function overlayCharts(state) {
    const box = document.querySelector("[data-overlay-charts]");
    if (!box) return;
    const palette = Cairn.palette();
    const runs = JSON.parse(document.getElementById("compare-data").textContent);
    const loaded = new Map();
    lazily(Array.from(box.querySelectorAll("[data-metric]")), async function (node) {
      const key = node.dataset.metric;
      const having = runs.map((r, i) => ({ run: r, color: palette[i % palette.length] }))
        .filter((x) => Object.prototype.hasOwnProperty.call(x.run.metrics, key));
      try {
        const all = await Promise.all(having.map((x) => Cairn.history(x.run.id, key, OVERLAY_POINTS)));
        loaded.set(node, all.map((series, i) => ({ series: series, color: having[i].color, name: having[i].run.name })));
        draw(node);
      } catch (error) {
        Cairn.chartNote(node, "Could not load this metric: " + error.message);
      }
    });
    function draw(node) {
      const items = loaded.get(node);
      const data = [];
      items.forEach((x) => data.push(...traces(x.series, state, x.color, x.name, items.length <= 10)));
      Plotly.react(node, data, layoutFor(state, false), Cairn.plotConfig);
    }
    state.listeners.push(() => loaded.forEach((_, node) => draw(node)));
  }

  Cairn.startCharts = function () {
    const hasCharts = document.querySelector("[data-run-charts], [data-overlay-charts]");
    if (!hasCharts) return;
    if (!Cairn.plotReady()) {
      document.querySelectorAll("[data-run-charts] [data-metric], [data-overlay-charts] [data-metric]")
        .forEach((n) => Cairn.chartNote(n, "Charts need the plotly package on the server (pip install 'cairn[server]')."));
      return;
    }
    const state = controls();
    runCharts(state);
    overlayCharts(state);
  };

  Cairn.startCharts();
})(window.Cairn);
