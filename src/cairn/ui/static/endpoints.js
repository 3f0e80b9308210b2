// Endpoint page: volume, latency percentiles, error rate, quality and drift over time per
// model version (data embedded by the server from the monitoring report), and the A/B
// result as points with their 95% intervals.
"use strict";

(function (Cairn) {
  const charts = document.querySelectorAll("[data-monitor-chart], [data-ab-chart]");
  if (!Cairn.plotReady()) {
    charts.forEach((n) => Cairn.chartNote(n, "Charts need the plotly package on the server."));
    return;
  }
  const palette = Cairn.palette();
  const dataNode = document.getElementById("monitor-data");
  const data = dataNode ? JSON.parse(dataNode.textContent) : {};
  const colors = {};
  function color(name) {  // by variant, so a variant keeps its colour on every chart
    const variant = name.match(/\(([^)]+)\)$/);
    const key = variant ? variant[1] : name;
    if (!(key in colors)) colors[key] = palette[Object.keys(colors).length % palette.length];
    return colors[key];
  }
  function layout(extra) {
    const l = Cairn.baseLayout(Object.assign({ showlegend: true,
      legend: { orientation: "h", y: -0.18, font: { size: 11 } } }, extra || {}));
    l.margin = { l: 8, r: 10, t: 6, b: 8 };
    return l;
  }
  const percent = { error_rate: true, quality: true };
  const dashes = { p50: "dot", p95: "solid", p99: "dash" };

  document.querySelectorAll("[data-monitor-chart]").forEach(function (node) {
    const key = node.dataset.monitorChart;
    let traces = [];
    if (key === "latency") {
      ["p50", "p95", "p99"].forEach(function (p) {
        (data[p] || []).forEach(function (t) {
          traces.push({ type: "scatter", mode: "lines+markers", x: t.x, y: t.y, name: t.name + " " + p,
            line: { color: color(t.name), dash: dashes[p], width: p === "p95" ? 2 : 1.3 }, marker: { size: 4 } });
        });
      });
    } else if (key === "volume") {
      traces = (data.volume || []).map((t) => ({ type: "bar", x: t.x, y: t.y, name: t.name, marker: { color: color(t.name) } }));
    } else {
      traces = (data[key] || []).map((t) => ({ type: "scatter", mode: "lines+markers", x: t.x, y: t.y, name: t.name,
        connectgaps: false, line: { color: color(t.name), width: 2 }, marker: { size: 5 } }));
    }
    if (!traces.length) return Cairn.chartNote(node, key === "quality" ? "No feedback yet." : "No data in this range.");
    const l = layout(key === "volume" ? { barmode: "stack" } : {});
    if (percent[key]) l.yaxis.tickformat = ".0%";
    l.yaxis.rangemode = "tozero";
    const top = Math.max(0, ...traces.flatMap((t) => t.y.filter(Number.isFinite)));
    if (top === 0) l.yaxis.range = [0, key === "error_rate" ? 0.05 : 1];  // not -1..1
    Plotly.newPlot(node, traces, l, Cairn.plotConfig);
  });

  const abNode = document.getElementById("ab-data");
  const abChart = document.querySelector("[data-ab-chart]");
  if (abNode && abChart) {
    const ab = JSON.parse(abNode.textContent);
    const trace = { type: "scatter", mode: "markers", x: ab.value, y: ab.variants,
      marker: { size: 11, color: ab.variants.map(color) },
      error_x: { type: "data", symmetric: false, color: "#667085", thickness: 2, width: 6,
        array: ab.high.map((h, i) => h - ab.value[i]), arrayminus: ab.value.map((v, i) => v - ab.low[i]) },
      hovertemplate: "%{y}: %{x:.4f}<extra></extra>" };
    const l = Cairn.baseLayout({ hovermode: "closest" });
    l.margin = { l: 8, r: 16, t: 6, b: 8 };
    l.yaxis.autorange = "reversed";
    Plotly.newPlot(abChart, [trace], l, Cairn.plotConfig);
  }
})(window.Cairn);
