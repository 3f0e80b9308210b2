// The run page's artifacts browser: previews of text, JSON, CSV tables and images, read
// from the artifact API. A large text file is read with a Range request: only its start.
"use strict";

(function (Cairn) {
  const TEXT_BYTES = 128 * 1024;
  const CSV_BYTES = 64 * 1024;
  const JSON_WHOLE = 2 * 1000 * 1000;
  const CSV_ROWS = 100;

  function artifactUrl(runId, path) {
    return "/api/v1/runs/" + encodeURIComponent(runId) + "/artifacts/" +
      path.split("/").map(encodeURIComponent).join("/");
  }

  async function readStart(url, bytes, size) {
    const whole = size <= bytes;
    const headers = whole ? {} : { Range: "bytes=0-" + (bytes - 1) };
    const response = await fetch(url, { headers: headers });
    if (!response.ok) throw new Error(response.status + " " + response.statusText);
    const buffer = await response.arrayBuffer();
    return { text: new TextDecoder("utf-8").decode(buffer), cut: !whole && buffer.byteLength < size };
  }

  // A small CSV reader: quoted fields, doubled quotes, newlines inside quotes.
  function parseCsv(text, delimiter, maxRows) {
    const rows = [];
    let row = [], field = "", quoted = false;
    for (let i = 0; i < text.length && rows.length < maxRows; i++) {
      const c = text[i];
      if (quoted) {
        if (c === '"') {
          if (text[i + 1] === '"') { field += '"'; i++; } else quoted = false;
        } else field += c;
      } else if (c === '"' && field === "") quoted = true;
      else if (c === delimiter) { row.push(field); field = ""; }
      else if (c === "\n" || c === "\r") {
        if (c === "\r" && text[i + 1] === "\n") i++;
        row.push(field); rows.push(row); row = []; field = "";
      } else field += c;
    }
    if ((field !== "" || row.length) && rows.length < maxRows) { row.push(field); rows.push(row); }
    return rows;
  }

  function csvTable(rows) {
    const [head, ...body] = rows;
    const numeric = (v) => v.trim() !== "" && Number.isFinite(Number(v));
    return Cairn.el("div", { className: "table-scroll" }, Cairn.el("table", { className: "data" }, [
      Cairn.el("caption", { className: "sr-only", text: "First rows of the table" }),
      Cairn.el("thead", {}, Cairn.el("tr", {}, (head || []).map((h) => Cairn.el("th", { scope: "col", text: h })))),
      Cairn.el("tbody", {}, body.map((r) => Cairn.el("tr", {}, r.map((v) => Cairn.el("td", { className: numeric(v) ? "n" : "", text: v }))))),
    ]));
  }

  async function show(pane, runId, button) {
    const path = button.dataset.preview;
    const kind = button.dataset.kind;
    const size = Number(button.dataset.size);
    const url = artifactUrl(runId, path);
    const body = Cairn.el("div", { className: "preview-body" }, Cairn.el("p", { className: "muted", text: "Loading…" }));
    pane.replaceChildren(
      Cairn.el("div", { className: "preview-head" }, [
        Cairn.el("div", {}, [Cairn.el("h3", { text: path }),
          Cairn.el("div", { className: "muted small", text: Cairn.formatSize(size) + " · " + button.dataset.media })]),
        Cairn.el("a", { className: "btn btn-small", href: url, download: path.split("/").pop(), text: "Download" }),
      ]),
      body);
    if (size === 0) { body.replaceChildren(Cairn.el("p", { className: "muted", text: "An empty file." })); return; }
    try {
      if (kind === "image") {
        body.replaceChildren(Cairn.el("img", { src: url, alt: path, loading: "lazy" }));
      } else if (kind === "csv") {
        const read = await readStart(url, CSV_BYTES, size);
        let text = read.text;
        if (read.cut) text = text.slice(0, Math.max(0, text.lastIndexOf("\n")));
        const delimiter = /\.tsv$/i.test(path) || /tab-separated/.test(button.dataset.media) ? "\t" : ",";
        const rows = parseCsv(text, delimiter, CSV_ROWS + 1);
        const note = rows.length > CSV_ROWS || read.cut ? "The first " + (rows.length - 1) + " rows." : rows.length - 1 + " rows.";
        body.replaceChildren(Cairn.el("p", { className: "muted small", text: note }), csvTable(rows));
      } else if (kind === "json" && size <= JSON_WHOLE) {
        const read = await readStart(url, JSON_WHOLE, size);
        let text = read.text;
        try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* JSON lines or broken: as is */ }
        body.replaceChildren(Cairn.el("pre", { text: text.length > 400000 ? text.slice(0, 400000) + "\n…" : text }));
      } else if (kind === "text" || kind === "json") {
        const read = await readStart(url, TEXT_BYTES, size);
        const nodes = [Cairn.el("pre", { text: read.text })];
        if (read.cut) nodes.unshift(Cairn.el("p", { className: "muted small", text: "The first " + Cairn.formatSize(TEXT_BYTES) + " of " + Cairn.formatSize(size) + "." }));
        body.replaceChildren(...nodes);
      } else {
        body.replaceChildren(Cairn.el("p", { className: "muted", text: "No preview for this kind of file; download it to open it." }));
      }
    } catch (error) {
      body.replaceChildren(Cairn.el("p", { className: "muted", text: "Could not load the preview: " + error.message }));
    }
  }

  document.querySelectorAll("[data-artifacts]").forEach(function (box) {
    const pane = box.querySelector("[data-preview-pane]");
    const runId = box.dataset.run;
    box.addEventListener("click", function (event) {
      const button = event.target.closest("[data-preview]");
      if (!button) return;
      box.querySelectorAll("tr.active").forEach((r) => r.classList.remove("active"));
      button.closest("tr").classList.add("active");
      show(pane, runId, button);
    });
    const first = ["image", "csv", "json", "text"].map((k) => box.querySelector('[data-preview][data-kind="' + k + '"]'))
      .find(Boolean) || box.querySelector("[data-preview]");
    if (first) first.click();
  });
})(window.Cairn);
