// The compare page: hide rows that do not differ, parallel coordinates from the params
// that vary to a chosen metric, and a scatter of one param against that metric.
"use strict";

(function (Cairn) {
  const toggle = document.querySelector("[data-only-diff]");
  if (toggle) {
    toggle.addEventListener("change", function () {
      document.querySelectorAll("[data-compare-table]").forEach((t) => t.classList.toggle("hide-same", toggle.checked));
    });
  }

  const dataNode = document.getElementById("compare-data");
  if (!dataNode || !Cairn.plotReady()) return;
  const runs = JSON.parse(dataNode.textContent);
  const palette = Cairn.palette();
  const metricSelect = document.querySelector("[data-pc-metric]");
  const paramSelect = document.querySelector("[data-sc-param]");
  const parcoordsNode = document.querySelector("[data-parcoords]");
  const scatterNode = document.querySelector("[data-scatter]");
  if (!metricSelect || !parcoordsNode || !scatterNode) return;

  const isNumber = (v) => v !== undefined && v !== null && String(v).trim() !== "" && Number.isFinite(Number(v));

  // A dimension of any values: numbers as they are, anything else as ordered categories.
  function dimension(label, values) {
    if (values.every(isNumber)) return { label: label, values: values.map(Number) };
    const categories = Array.from(new Set(values.map((v) => (v === undefined ? "—" : String(v))))).sort();
    return {
      label: label,
      values: values.map((v) => categories.indexOf(v === undefined ? "—" : String(v))),
      tickvals: categories.map((_, i) => i),
      ticktext: categories.map((c) => (c.length > 14 ? c.slice(0, 13) + "…" : c)),
      range: [-0.3, Math.max(categories.length - 0.7, 0.3)],
    };
  }

  function varyingParams(subset) {
    const keys = new Set();
    subset.forEach((r) => Object.keys(r.params).forEach((k) => keys.add(k)));
    return Array.from(keys).sort().filter((k) => new Set(subset.map((r) => r.params[k])).size > 1);
  }

  function drawParcoords(metric) {
    const subset = runs.filter((r) => Number.isFinite(r.metrics[metric]));
    const params = varyingParams(subset).slice(0, 12);
    if (subset.length < 2) return Cairn.chartNote(parcoordsNode, "Fewer than two of these runs have " + metric + ".");
    if (!params.length) return Cairn.chartNote(parcoordsNode, "The runs with " + metric + " have the same params.");
    const dims = params.map((k) => dimension(k, subset.map((r) => r.params[k])));
    const values = subset.map((r) => r.metrics[metric]);
    dims.push({ label: metric, values: values });
    Plotly.react(parcoordsNode, [{
      type: "parcoords",
      line: { color: values, colorscale: [[0, "#e8772e"], [0.5, "#b7a4c9"], [1, "#3557c9"]], showscale: true,
        colorbar: { thickness: 10, len: 0.8, outlinewidth: 0, tickfont: { size: 10 } } },
      dimensions: dims,
      labelfont: { size: 11.5 }, tickfont: { size: 10.5 }, rangefont: { size: 9 },
    }], Cairn.baseLayout({ margin: { l: 60, r: 40, t: 40, b: 20 } }), Cairn.plotConfig);
  }

  function drawScatter(metric, param) {
    if (!param) return Cairn.chartNote(scatterNode, "These runs have no params.");
    const points = runs.map((r, i) => ({ run: r, color: palette[i % palette.length] }))
      .filter((p) => Number.isFinite(p.run.metrics[metric]) && p.run.params[param] !== undefined);
    if (!points.length) return Cairn.chartNote(scatterNode, "No run has both " + param + " and " + metric + ".");
    const numeric = points.every((p) => isNumber(p.run.params[param]));
    const layout = Cairn.baseLayout({ hovermode: "closest", margin: { l: 8, r: 10, t: 10, b: 8 } });
    layout.xaxis.title = { text: param, font: { size: 11.5 } };
    layout.yaxis.title = { text: metric, font: { size: 11.5 } };
    if (!numeric) layout.xaxis.type = "category";
    Plotly.react(scatterNode, [{
      type: "scatter", mode: "markers",
      x: points.map((p) => (numeric ? Number(p.run.params[param]) : String(p.run.params[param]))),
      y: points.map((p) => p.run.metrics[metric]),
      text: points.map((p) => p.run.name),
      marker: { color: points.map((p) => p.color), size: 10, line: { color: "#ffffff", width: 1 } },
      hovertemplate: "%{text}<br>" + param + " = %{x}<br>" + metric + " = %{y:.4g}<extra></extra>",
    }], layout, Cairn.plotConfig);
  }

  function redraw() {
    drawParcoords(metricSelect.value);
    drawScatter(metricSelect.value, paramSelect ? paramSelect.value : null);
  }
  metricSelect.addEventListener("change", redraw);
  if (paramSelect) paramSelect.addEventListener("change", redraw);
  redraw();
})(window.Cairn);
