// Dataset pages: a histogram per numeric column and the top values of a categorical one
// (from the version's profile), and on the diff page the two versions overlaid.
"use strict";

(function (Cairn) {
  if (!Cairn.plotReady()) {
    document.querySelectorAll("[data-profile-column], [data-diff-column]").forEach((n) =>
      Cairn.chartNote(n, "Charts need the plotly package on the server."));
    return;
  }
  const palette = Cairn.palette();
  const OLD = "#9aa4b5";
  const NEW = palette[0];

  function layout(extra) {
    const l = Cairn.baseLayout(Object.assign({ bargap: 0.04, hovermode: "closest" }, extra || {}));
    l.margin = { l: 8, r: 8, t: 4, b: 8 };
    return l;
  }

  function histogram(column, total, color, name) {
    const h = column.histogram;
    if (!h || !h.counts || !h.counts.length) return null;
    const edges = h.edges;
    const centers = h.counts.map((_, i) => (edges[i] + edges[i + 1]) / 2);
    const widths = h.counts.map((_, i) => Math.max(edges[i + 1] - edges[i], 1e-12));
    const y = total ? h.counts.map((c) => c / total) : h.counts;
    return { type: "bar", x: centers, y: y, width: widths, name: name, marker: { color: color, line: { width: 0 } },
      customdata: h.counts.map((c, i) => [edges[i], edges[i + 1], c]),
      hovertemplate: "%{customdata[0]:.4g} – %{customdata[1]:.4g}<br>%{customdata[2]} rows<extra>" + name + "</extra>" };
  }

  function topValues(column, total, color, name, order) {
    const top = column.top || [];
    if (!top.length) return null;
    const counts = new Map(top.map(([v, c]) => [String(v), c]));
    const labels = order || top.map(([v]) => String(v));
    return { type: "bar", orientation: "h", y: labels.slice().reverse(), name: name,
      x: labels.slice().reverse().map((v) => (counts.get(v) || 0) / (total || 1)),
      marker: { color: color }, hovertemplate: "%{y}: %{x:.1%}<extra>" + name + "</extra>" };
  }

  // The profile page: one small chart per column.
  const profileNode = document.getElementById("profile-data");
  if (profileNode) {
    const profile = JSON.parse(profileNode.textContent);
    document.querySelectorAll("[data-profile-column]").forEach(function (node) {
      const column = profile.columns[Number(node.dataset.profileColumn)];
      if (column.kind === "numeric") {
        const trace = histogram(column, 0, NEW, column.name);
        if (!trace) return Cairn.chartNote(node, "No finite values.");
        Plotly.newPlot(node, [trace], layout(), Cairn.plotConfig);
      } else {
        const trace = topValues(column, column.count, NEW, column.name, null);
        if (!trace) return Cairn.chartNote(node, "No values.");
        const l = layout();
        l.xaxis.tickformat = ".0%";
        Plotly.newPlot(node, [trace], l, Cairn.plotConfig);
      }
    });
  }

  // The diff page: both versions' distributions in one chart per column, as fractions.
  const diffNode = document.getElementById("diff-profiles");
  if (diffNode) {
    const profiles = JSON.parse(diffNode.textContent);
    document.querySelectorAll("[data-diff-column]").forEach(function (node) {
      const name = node.dataset.diffColumn;
      const old = profiles.old[name], now = profiles.new[name];
      if (!old || !now) return Cairn.chartNote(node, "Only in one version.");
      const l = layout({ barmode: old.kind === "numeric" ? "overlay" : "group", showlegend: true });
      l.legend = { orientation: "h", y: 1, yanchor: "bottom", x: 1, xanchor: "right", font: { size: 11 }, bgcolor: "rgba(0,0,0,0)" };
      l.margin.t = 24;
      let data;
      if (old.kind === "numeric" && now.kind === "numeric") {
        data = [histogram(old, old.count, OLD, "old"), histogram(now, now.count, NEW, "new")].filter(Boolean);
        data.forEach((t) => { t.opacity = 0.6; });
        l.yaxis.tickformat = ".0%";
      } else if (old.top && now.top) {
        const order = Array.from(new Set([...now.top.map(([v]) => String(v)), ...old.top.map(([v]) => String(v))])).slice(0, 12);
        data = [topValues(old, old.count, OLD, "old", order), topValues(now, now.count, NEW, "new", order)].filter(Boolean);
        l.xaxis.tickformat = ".0%";
      } else {
        return Cairn.chartNote(node, "No distribution to draw for a " + now.kind + " column.");
      }
      if (!data.length) return Cairn.chartNote(node, "No values.");
      Plotly.newPlot(node, data, l, Cairn.plotConfig);
    });
  }
})(window.Cairn);
