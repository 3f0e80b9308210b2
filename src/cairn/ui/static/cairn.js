// Cairn's shared page behaviour: the project picker, keyboard-navigable tables, run
// selection for comparing, auto-submitting selects. Plain JavaScript, no framework;
// every page works without it, this only makes it quicker to use.
"use strict";

window.Cairn = window.Cairn || {};

(function (Cairn) {
  Cairn.getJSON = async function (url, options) {
    const response = await fetch(url, Object.assign({ headers: { Accept: "application/json" } }, options));
    if (!response.ok) {
      let message = response.status + " " + response.statusText;
      try {
        const body = await response.json();
        if (body && body.error && body.error.message) message = body.error.message;
      } catch (_) { /* not JSON: keep the status line */ }
      throw new Error(message);
    }
    return response.json();
  };

  Cairn.el = function (tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of [].concat(children || [])) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  };

  Cairn.formatNumber = function (value) {
    if (value === null || value === undefined || Number.isNaN(value)) return "—";
    if (!Number.isFinite(value)) return value > 0 ? "∞" : "−∞";
    const size = Math.abs(value);
    if (Number.isInteger(value) && size < 1e15) return value.toLocaleString("en-US");
    if (size >= 1e6 || size < 1e-4) return value.toExponential(3);
    if (size >= 1000) return value.toLocaleString("en-US", { maximumFractionDigits: 1 });
    return String(Number(value.toPrecision(4)));
  };

  Cairn.formatSize = function (bytes) {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let size = bytes, unit = 0;
    while (size >= 1000 && unit < units.length - 1) { size /= 1000; unit += 1; }
    return unit === 0 ? size + " B" : size.toFixed(1) + " " + units[unit];
  };

  // The project picker: its suggestions come from the JSON API once, on first focus.
  function projectPicker() {
    const input = document.getElementById("project-picker");
    const list = document.getElementById("project-list");
    if (!input || !list) return;
    let loaded = false;
    input.addEventListener("focus", async function () {
      if (loaded) return;
      loaded = true;
      try {
        const projects = await Cairn.getJSON(input.dataset.projectsApi);
        list.replaceChildren(...projects.map((p) => Cairn.el("option", { value: p.project.name })));
      } catch (_) {
        loaded = false; // try again next time
      }
    });
    input.addEventListener("change", function () {
      if (list.querySelector('option[value="' + CSS.escape(input.value) + '"]')) input.form.submit();
    });
  }

  // Up and Down move between rows of a table, keeping the column; Home/End go to the ends.
  function navigableTables() {
    document.querySelectorAll("[data-nav-table]").forEach(function (table) {
      table.addEventListener("keydown", function (event) {
        if (!["ArrowUp", "ArrowDown"].includes(event.key) || event.altKey || event.metaKey) return;
        const target = event.target;
        if (target.tagName === "SELECT" || (target.tagName === "INPUT" && target.type !== "checkbox")) return;
        const cell = target.closest("td, th");
        const row = target.closest("tr");
        if (!cell || !row || row.parentElement.tagName !== "TBODY") return;
        const index = Array.prototype.indexOf.call(row.children, cell);
        let next = event.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling;
        while (next) {
          const focusable = next.children[index] && next.children[index].querySelector("a, button, input");
          const any = focusable || next.querySelector("a, button, input");
          if (any) {
            event.preventDefault();
            any.focus();
            any.scrollIntoView({ block: "nearest" });
            return;
          }
          next = event.key === "ArrowDown" ? next.nextElementSibling : next.previousElementSibling;
        }
      });
    });
  }

  // Selecting runs to compare: a live count, select-all, and a tidy ?runs=a,b,c address.
  function compareSelection() {
    const form = document.querySelector("[data-compare-form]");
    const button = document.getElementById("compare-button");
    const status = document.getElementById("selection-status");
    if (!button) return;
    if (!form) { button.disabled = true; return; }
    const boxes = () => Array.from(form.querySelectorAll('input[name="run"]'));
    const all = form.querySelector("[data-select-all]");
    function update() {
      const chosen = boxes().filter((b) => b.checked);
      const n = chosen.length;
      button.disabled = n < 2 || n > 50;
      button.textContent = n ? "Compare " + n : "Compare";
      if (status) {
        status.textContent = n === 0 ? "Select 2 to 50 runs to compare" :
          n === 1 ? "1 run selected: choose at least one more" :
          n > 50 ? n + " runs selected: at most 50" : n + " runs selected";
      }
      if (all) {
        all.checked = n > 0 && n === boxes().length;
        all.indeterminate = n > 0 && n < boxes().length;
      }
      boxes().forEach((b) => b.closest("tr").classList.toggle("selected", b.checked));
    }
    form.addEventListener("change", function (event) {
      if (event.target === all) boxes().forEach((b) => { b.checked = all.checked; });
      update();
    });
    form.addEventListener("submit", function (event) {
      const ids = boxes().filter((b) => b.checked).map((b) => b.value);
      if (ids.length < 2) { event.preventDefault(); return; }
      event.preventDefault();
      window.location.assign(form.action + "?runs=" + ids.map(encodeURIComponent).join(","));
    });
    update();
  }

  // Leave empty fields out of a GET form's address; the empty "col" stays only when it
  // is the whole choice (it means: no columns).
  function tidyForms() {
    document.querySelectorAll("form[data-tidy]").forEach(function (form) {
      form.addEventListener("submit", function () {
        const fields = Array.from(form.elements).filter((f) => f.name && !f.disabled);
        const chosen = fields.some((f) => f.name === "col" && f.value && (f.type !== "checkbox" || f.checked));
        fields.forEach(function (f) {
          if (f.type === "checkbox" || f.value) return;
          if (f.hasAttribute("data-none-chosen") && !chosen) return;
          f.disabled = true;
        });
      });
      window.addEventListener("pageshow", () => Array.from(form.elements).forEach((f) => { f.disabled = false; }));
    });
  }

  function autoSubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", () => select.form.submit());
    });
  }

  // Escape closes an open dropdown (the column picker, the filter help).
  function dropdowns() {
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape") return;
      document.querySelectorAll("details.dropdown[open], details.help[open]").forEach(function (d) {
        d.open = false;
        d.querySelector("summary").focus();
      });
    });
    document.addEventListener("click", function (event) {
      document.querySelectorAll("details.dropdown[open], details.help[open]").forEach(function (d) {
        if (!d.contains(event.target)) d.open = false;
      });
    });
  }

  projectPicker();
  navigableTables();
  compareSelection();
  autoSubmit();
  tidyForms();
  dropdowns();
})(window.Cairn);
