// Batch Orchestra dashboard: confirmations, live batch progress, the throughput chart and a
// refreshing batch list. Plain JS, no dependencies. Text from the server is only ever set with
// textContent (never innerHTML), so batch IDs and errors cannot inject markup.
"use strict";

(function () {
  var SVG = "http://www.w3.org/2000/svg";
  var MAX_SAMPLES = 300;

  function confirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        var input = form.querySelector("input[name=n]");
        var text = form.dataset.confirm.replace("{n}", input ? input.value : "");
        if (!window.confirm(text)) {
          event.preventDefault();
          return;
        }
        form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      });
    });
  }

  function fmt(n, digits) {
    if (n === null || n === undefined) { return "-"; }
    return Number(n).toLocaleString("en-US", {
      minimumFractionDigits: digits || 0, maximumFractionDigits: digits || 0
    });
  }

  function duration(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) { return s + "s"; }
    var m = Math.floor(s / 60); s = s % 60;
    if (m < 60) { return m + "m " + String(s).padStart(2, "0") + "s"; }
    var h = Math.floor(m / 60); m = m % 60;
    if (h < 24) { return h + "h " + String(m).padStart(2, "0") + "m"; }
    return Math.floor(h / 24) + "d " + String(h % 24).padStart(2, "0") + "h";
  }

  function setField(root, name, text) {
    root.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) {
      el.textContent = text;
    });
  }

  function showReason(root, name, text) {
    var el = root.querySelector('[data-field="' + name + '"]');
    if (el) { el.textContent = text; el.hidden = !text; }
  }

  function utc(iso) {
    if (!iso) { return "-"; }
    return iso.replace("T", " ").replace(/\.\d+/, "").replace(/\+00:00$/, "") + " UTC";
  }

  function fillFailures(kind, pages, total) {
    var section = document.getElementById(kind + "-section");
    var body = document.querySelector("#" + kind + "-pages tbody");
    if (!section || !body) { return; }
    section.hidden = total === 0;
    body.replaceChildren();
    pages.forEach(function (f) {
      var row = document.createElement("tr");
      var when = kind === "stuck" ? f.next_retry_at : f.failed_at;
      [f.page_num, f.cursor_str, f.attempts, f.error_type, f.error_message, utc(when)]
        .forEach(function (value) {
          var cell = document.createElement("td");
          cell.textContent = String(value);
          row.appendChild(cell);
        });
      body.appendChild(row);
    });
  }

  function drawChart(svg, samples) {
    svg.replaceChildren();
    var w = 640, h = 200, pad = 34;
    var axis = function (x1, y1, x2, y2) {
      var l = document.createElementNS(SVG, "line");
      l.setAttribute("x1", x1); l.setAttribute("y1", y1);
      l.setAttribute("x2", x2); l.setAttribute("y2", y2);
      l.setAttribute("class", "axis");
      svg.appendChild(l);
    };
    var label = function (x, y, text, cls) {
      var t = document.createElementNS(SVG, "text");
      t.setAttribute("x", x); t.setAttribute("y", y);
      t.setAttribute("class", cls || "tick");
      t.textContent = text;
      svg.appendChild(t);
    };
    axis(pad, h - pad, w - pad, h - pad);
    axis(pad, 10, pad, h - pad);
    axis(w - pad, 10, w - pad, h - pad);
    if (samples.length < 2) {
      label(w / 2 - 90, h / 2, "collecting samples…", "wait");
      return;
    }
    var t0 = samples[0].t, t1 = samples[samples.length - 1].t;
    var span = Math.max(1, t1 - t0);
    var maxRate = Math.max.apply(null, samples.map(function (s) { return s.items; }).concat([1]));
    var maxPar = Math.max.apply(null, samples.map(function (s) {
      return Math.max(s.running, s.cap);
    }).concat([1]));
    var x = function (t) { return pad + (t - t0) / span * (w - 2 * pad); };
    var line = function (key, max, cls) {
      var points = samples.map(function (s) {
        var y = h - pad - s[key] / max * (h - pad - 12);
        return x(s.t).toFixed(1) + "," + y.toFixed(1);
      });
      var p = document.createElementNS(SVG, "polyline");
      p.setAttribute("points", points.join(" "));
      p.setAttribute("class", "series " + cls);
      svg.appendChild(p);
    };
    line("items", maxRate, "items");
    line("running", maxPar, "running");
    line("cap", maxPar, "cap");
    label(2, 16, fmt(maxRate, maxRate < 10 ? 1 : 0));
    label(2, h - pad, "0");
    label(w - pad + 4, 16, fmt(maxPar));
    label(w - pad + 4, h - pad, "0");
    label(pad, h - 10, "-" + duration(span));
    label(w - pad - 24, h - 10, "now");
  }

  function batchPage(root) {
    var api = root.dataset.api;
    var interval = Number(root.dataset.interval) || 1000;
    var svg = document.getElementById("chart");
    var bar = document.getElementById("progress");
    var samples = [];
    var timer = null;

    function apply(state) {
      var p = state.progress;
      var label = root.querySelector('[data-field="label"]');
      if (label) {
        label.textContent = state.label;
        label.className = "status s-" + state.label.toLowerCase();
      }
      var note = root.querySelector('[data-field="note"]');
      if (note) { note.textContent = state.note || ""; note.hidden = !state.note; }
      var controls = document.getElementById("controls");
      if (controls && !state.is_open) { controls.hidden = true; }
      if (!p) { return; }
      document.querySelectorAll("form.when-running").forEach(function (f) {
        f.hidden = p.is_paused;
      });
      document.querySelectorAll("form.when-paused").forEach(function (f) {
        f.hidden = !p.is_paused;
      });
      var cap = document.getElementById("parallelism-input");
      if (cap && document.activeElement !== cap && !cap.dataset.edited) {
        cap.value = p.max_parallelism;
      }
      ["num_completed_pages", "num_processing_pages", "num_pending_pages", "num_stuck_pages",
       "num_failed_pages", "max_parallelism_achieved", "num_runs"]
        .forEach(function (k) { setField(root, k, fmt(p[k])); });
      setField(root, "num_completed_items", fmt(p.num_completed_items) +
        (p.total_items !== null ? " of " + fmt(p.total_items) : ""));
      var effective = p.effective_parallelism;
      setField(root, "max_parallelism", fmt(p.max_parallelism) +
        (effective !== undefined && effective !== p.max_parallelism ?
          " (now " + fmt(effective) + ")" : ""));
      showReason(root, "pause_reason", p.is_paused && p.pause_reason ?
        "paused: " + p.pause_reason : "");
      showReason(root, "hold_reason", p.hold_reason ? "held back: " + p.hold_reason : "");
      showReason(root, "throttle_reason", p.throttle_reason && !p.is_paused ?
        "throttled: " + p.throttle_reason : "");
      showReason(root, "no_progress", p.no_progress || "");
      var hooks = document.getElementById("hook-errors");
      if (hooks) {
        hooks.replaceChildren.apply(hooks, (state.hooks || []).map(function (line) {
          var li = document.createElement("li");
          li.textContent = line;
          return li;
        }));
        hooks.hidden = !(state.hooks || []).length;
      }
      setField(root, "items_per_second", fmt(p.items_per_second, 1));
      setField(root, "pages_per_second", fmt(p.pages_per_second, 1));
      var eta = (p.eta_seconds === null || p.is_finished || p.is_paused) ? "-" :
        duration(p.eta_seconds);
      setField(root, "eta", eta);
      var pct = p.percent_complete;
      if (pct === null && (p.is_finished || state.status === "COMPLETED")) { pct = 100; }
      if (bar) {
        if (pct === null) { bar.removeAttribute("value"); }
        else { bar.value = Math.max(0, Math.min(100, pct)); }
      }
      setField(root, "percent", pct === null ? "% needs total_items" : pct.toFixed(1) + "%");
      fillFailures("stuck", p.stuck_pages, p.num_stuck_pages);
      fillFailures("failed", p.failed_pages, p.num_failed_pages);
      if (state.is_open) {
        samples.push({
          t: Date.now() / 1000, items: p.items_per_second,
          running: p.num_processing_pages, cap: p.max_parallelism
        });
        if (samples.length > MAX_SAMPLES) { samples.shift(); }
      }
      if (svg) { drawChart(svg, samples); }
    }

    function poll() {
      if (document.hidden) { return; }  // a background tab does not poll
      fetch(api, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (state) {
          if (state.error) { return; }
          apply(state);
          root.dataset.polls = String(Number(root.dataset.polls || 0) + 1);
          if (!state.is_open) { clearInterval(timer); root.dataset.open = "0"; }
        })
        .catch(function () { /* the next tick tries again */ });
    }

    if (svg) { drawChart(svg, samples); }
    if (root.dataset.open === "1") {
      poll();
      timer = setInterval(poll, interval);
    }
  }

  function listPage() {
    var table = document.getElementById("batches");
    if (!table) { return; }
    setInterval(function () {
      if (document.hidden) { return; }
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (text) {
          // The server escaped every value; swap in its fresh rows.
          var fresh = new DOMParser().parseFromString(text, "text/html");
          var body = fresh.querySelector("#batches tbody");
          var current = document.querySelector("#batches tbody");
          if (body && current) { current.replaceWith(document.adoptNode(body)); }
        })
        .catch(function () { /* next tick */ });
    }, 5000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    confirmForms();
    var cap = document.getElementById("parallelism-input");
    if (cap) { cap.addEventListener("input", function () { cap.dataset.edited = "1"; }); }
    var root = document.getElementById("batch");
    if (root) { batchPage(root); }
    if (document.body.dataset.page === "list") { listPage(); }
  });
})();
