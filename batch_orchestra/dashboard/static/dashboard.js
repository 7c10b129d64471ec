// Batch Orchestra dashboard: confirmations and controls that post without leaving the page,
// live batch progress, the throughput charts and a refreshing batch list. Plain JS, no
// dependencies. Text from the server is only ever set with textContent (never innerHTML); the
// batch page's tables are swapped in from the server's own escaped markup (DOMParser), so batch
// IDs and errors cannot inject markup.
"use strict";

(function () {
  var SVG = "http://www.w3.org/2000/svg";
  var MAX_SAMPLES = 300;
  var UNKNOWN = "unknown";
  var DETAILS_EVERY = 5;  // polls between refreshes of the tables when nothing seems to change

  // ---- formatting --------------------------------------------------------------------------

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

  function rates(p) {
    var parts = [];
    var up = function (n) { return Number(n).toLocaleString("en-US", { maximumFractionDigits: 3 }); };
    if (p.max_pages_per_second !== null) { parts.push(up(p.max_pages_per_second) + " pages/s"); }
    if (p.max_items_per_second !== null) { parts.push(up(p.max_items_per_second) + " items/s"); }
    return parts.join(", ") || "none";
  }

  // ---- controls: confirm, then post and stay on the page -----------------------------------

  function confirmText(form) {
    return form.dataset.confirm.replace(/\{(\w+)\}/g, function (_, name) {
      var input = form.querySelector('[name="' + name + '"]');
      var value = input ? input.value.trim() : "";
      return value || "unchanged";
    });
  }

  function flash(text, isError) {
    var el = document.getElementById("flash");
    if (!el) { return; }
    el.textContent = text;
    el.hidden = !text;
    el.classList.toggle("error", Boolean(isError));
    el.setAttribute("role", isError ? "alert" : "status");
  }

  function samePage(location) {
    return new URL(location, window.location.href).pathname === window.location.pathname;
  }

  function onSubmit(event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) { return; }
    if (!window.confirm(confirmText(form))) { event.preventDefault(); return; }
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    if (!window.fetch || !window.URLSearchParams) { return; }  // a plain post and redirect
    event.preventDefault();
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json",
                 "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(new FormData(form)).toString()
    })
      .then(function (r) { return r.json(); })
      .then(function (answer) {
        if (!answer.ok) {
          flash((answer.title ? answer.title + ": " : "") + answer.error, true);
          return;
        }
        flash(answer.message, false);
        // A redrive that started a new batch goes there; a series page shows its new state.
        var series = document.body.dataset.page === "series";
        if (answer.location && (series || !samePage(answer.location))) {
          window.location.assign(answer.location);
          return;
        }
        form.querySelectorAll('input[type="text"]').forEach(function (i) { i.value = ""; });
        form.querySelectorAll("[data-edited]").forEach(function (i) { delete i.dataset.edited; });
        document.dispatchEvent(new CustomEvent("batch-orchestra:changed"));
      })
      .catch(function () { flash("the dashboard did not answer; try again", true); })
      .finally(function () { buttons.forEach(function (b) { b.disabled = false; }); });
  }

  // ---- the chart's data: the batch's own history, else this page's samples ------------------

  // A sample from progress.history (when the batch keeps one: a HistorySample, t in seconds
  // since the epoch) or from this page: items per second, pages running, the parallelism cap.
  function sample(s) {
    var t = typeof s.t === "number" ? s.t : Date.parse(s.at || s.time || "") / 1000;
    return {
      t: t,
      items: Number(s.items_per_second !== undefined ? s.items_per_second : s.items) || 0,
      running: Number(s.num_processing_pages !== undefined ? s.num_processing_pages : s.running) || 0,
      cap: Number(s.max_parallelism !== undefined ? s.max_parallelism : s.cap) || 0
    };
  }

  function Samples(batchId) {
    var key = "batch-orchestra:samples:" + batchId;
    var own = [];
    try { own = JSON.parse(window.sessionStorage.getItem(key) || "[]").map(sample); }
    catch (e) { own = []; }
    return {
      add: function (p) {
        own.push(sample({ t: Date.now() / 1000, items: p.items_per_second,
                          running: p.num_processing_pages, cap: p.max_parallelism }));
        if (own.length > MAX_SAMPLES) { own.splice(0, own.length - MAX_SAMPLES); }
        try { window.sessionStorage.setItem(key, JSON.stringify(own)); } catch (e) { /* full */ }
      },
      // The batch's history when its progress carries one, followed by this page's newer
      // samples; otherwise this page's samples alone.
      points: function (p) {
        var history = p && Array.isArray(p.history) ? p.history.map(sample) : [];
        history = history.filter(function (s) { return isFinite(s.t); });
        if (history.length < 2) { return { points: own.slice(), source: "page" }; }
        var last = history[history.length - 1].t;
        return { points: history.concat(own.filter(function (s) { return s.t > last; })),
                 source: "history" };
      }
    };
  }

  // ---- drawing: one quantity per chart ------------------------------------------------------

  function niceMax(v, whole) {
    if (!(v > 0)) { return whole ? 2 : 1; }
    var step = Math.pow(10, Math.floor(Math.log10(v)));
    var n = [1, 2, 2.5, 5, 10].find(function (k) { return k * step >= v; });
    var max = n * step;
    return whole ? Math.max(2, Math.ceil(max / 2) * 2) : max;  // a whole middle tick
  }

  function el(svg, name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    svg.appendChild(node);
    return node;
  }

  // series: [{key, cls}]; options: {whole (counts), end (seconds, or null: now), average}
  function drawPanel(svg, points, series, options) {
    svg.replaceChildren();
    var w = 640, h = 160, left = 56, right = 12, top = 10, bottom = 22;
    var values = [options.average || 0];
    points.forEach(function (s) { series.forEach(function (k) { values.push(s[k.key]); }); });
    var max = niceMax(Math.max.apply(null, values), options.whole);
    var y = function (v) { return top + (1 - v / max) * (h - top - bottom); };
    [0, max / 2, max].forEach(function (v) {
      el(svg, "line", { x1: left, x2: w - right, y1: y(v), y2: y(v), "class": v ? "grid" : "axis" });
      el(svg, "text", { x: left - 6, y: y(v) + 4, "class": "tick", "text-anchor": "end" },
        fmt(v, !options.whole && max < 10 && v ? 1 : 0));
    });
    if (options.average) {
      el(svg, "line", { x1: left, x2: w - right, y1: y(options.average), y2: y(options.average),
                        "class": "series average" });
      el(svg, "text", { x: w - right, y: y(options.average) - 5, "class": "tick",
                        "text-anchor": "end" }, "average " + fmt(options.average, 1));
    }
    svg.dataset.points = String(points.length);
    svg.dataset.from = points.length ? String(points[0].t) : "";
    if (points.length < 2) {
      el(svg, "text", { x: (left + w - right) / 2, y: h / 2, "class": "wait",
                        "text-anchor": "middle" },
        options.average ? "" : (options.end ? "no samples from while it ran" :
                                "collecting samples…"));
      return;
    }
    var t0 = points[0].t, t1 = Math.max(points[points.length - 1].t, options.end || 0);
    var span = Math.max(1, t1 - t0);
    var x = function (t) { return left + (t - t0) / span * (w - left - right); };
    series.forEach(function (k) {
      el(svg, "polyline", {
        points: points.map(function (s) {
          return x(s.t).toFixed(1) + "," + y(s[k.key]).toFixed(1);
        }).join(" "),
        "class": "series " + k.cls
      });
    });
    el(svg, "text", { x: left, y: h - 6, "class": "tick" }, "-" + duration(span));
    el(svg, "text", { x: w - right, y: h - 6, "class": "tick", "text-anchor": "end" },
      options.end ? "end" : "now");
  }

  // ---- the batch page -----------------------------------------------------------------------

  var COUNTS = ["num_completed_pages", "num_processing_pages", "num_pending_pages",
                "num_retrying_pages", "num_stuck_pages", "num_failed_pages", "num_skipped_pages",
                "num_failed_items", "max_parallelism_achieved", "num_runs"];

  function setField(root, name, text) {
    root.querySelectorAll('[data-field="' + name + '"]').forEach(function (node) {
      node.textContent = text;
    });
  }

  function showReason(root, name, text) {
    var node = root.querySelector('[data-field="' + name + '"]');
    if (node) { node.textContent = text; node.hidden = !text; }
  }

  function showHooks(lines) {
    var hooks = document.getElementById("hook-errors");
    if (!hooks) { return; }
    hooks.replaceChildren.apply(hooks, lines.map(function (line) {
      var li = document.createElement("li");
      li.textContent = line;
      return li;
    }));
    hooks.hidden = !lines.length;
  }

  function showForms(selector, visible) {
    document.querySelectorAll(selector).forEach(function (f) { f.hidden = !visible; });
  }

  function applyUnknown(root, state) {
    COUNTS.concat(["items_per_second", "pages_per_second", "max_parallelism", "eta"])
      .forEach(function (k) { setField(root, k, UNKNOWN); });
    setField(root, "num_completed_items", UNKNOWN +
      (state.total_items !== null ? " of " + fmt(state.total_items) : ""));
    setField(root, "percent", UNKNOWN);
  }

  function applyProgress(root, state, bar) {
    var p = state.progress;
    COUNTS.forEach(function (k) { setField(root, k, fmt(p[k])); });
    setField(root, "num_completed_items", fmt(p.num_completed_items) +
      (p.total_items !== null ? " of " + fmt(p.total_items) : ""));
    var effective = p.effective_parallelism;
    setField(root, "max_parallelism", fmt(p.max_parallelism) +
      (effective !== undefined && effective !== p.max_parallelism ?
        " (now " + fmt(effective) + ")" : ""));
    var average = state.average_items_per_second, pagesAverage = state.average_pages_per_second;
    setField(root, "items_per_second", fmt(average !== null ? average : p.items_per_second, 1));
    setField(root, "pages_per_second",
             fmt(pagesAverage !== null ? pagesAverage : p.pages_per_second, 1));
    setField(root, "rate_limits", "now: " + rates(p));
    setField(root, "eta", (p.eta_seconds === null || p.is_finished || p.is_paused) ? "-" :
      duration(p.eta_seconds));
    showReason(root, "pause_reason", p.is_paused && p.pause_reason ?
      "paused: " + p.pause_reason : "");
    showReason(root, "hold_reason", p.hold_reason ? "held back: " + p.hold_reason : "");
    showReason(root, "throttle_reason", p.throttle_reason && !p.is_paused ?
      "throttled: " + p.throttle_reason : "");
    showReason(root, "health", p.health ?
      "health: " + p.health + (p.health_reason ? ": " + p.health_reason : "") : "");
    showReason(root, "no_progress", p.no_progress || "");
    var pct = p.percent_complete;
    if (pct === null && (p.is_finished || state.status === "COMPLETED")) { pct = 100; }
    if (bar) {
      if (pct === null) { bar.removeAttribute("value"); }
      else { bar.value = Math.max(0, Math.min(100, pct)); }
    }
    setField(root, "percent", pct === null ? "% needs total_items" : pct.toFixed(1) + "%");
    var redrivable = state.is_open || state.status === "COMPLETED";
    showForms("form.when-running", state.is_open && !p.is_paused);
    showForms("form.when-paused", state.is_open && p.is_paused);
    showForms("form.when-failed-pages", redrivable && p.num_failed_pages > 0);
    showForms("form.when-failed-items", redrivable && p.num_failed_items > 0);
    var cap = document.getElementById("parallelism-input");
    if (cap && document.activeElement !== cap && !cap.dataset.edited) {
      cap.value = p.max_parallelism;
    }
  }

  // What the tables show, in a few numbers: when it changes, the tables are fetched again.
  function signature(p) {
    if (!p) { return ""; }
    var attempts = 0;
    p.retrying_pages.concat(p.stuck_pages).forEach(function (f) { attempts += f.attempts; });
    return [p.num_retrying_pages, p.num_stuck_pages, p.num_failed_pages, p.num_failed_items,
            p.num_skipped_pages, p.control_changes.length, p.errors.length, attempts].join(",");
  }

  function refreshDetails() {
    var current = document.getElementById("details");
    if (!current || current.contains(document.activeElement)) { return; }  // typing there
    fetch(window.location.pathname, { credentials: "same-origin",
                                      headers: { "Accept": "text/html" } })
      .then(function (r) { return r.text(); })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("details");
        var now = document.getElementById("details");
        if (fresh && now && !now.contains(document.activeElement)) {
          now.replaceWith(document.adoptNode(fresh));
        }
      })
      .catch(function () { /* the next change tries again */ });
  }

  function batchPage(root) {
    var api = root.dataset.api;
    var interval = Number(root.dataset.interval) || 1000;
    var bar = document.getElementById("progress");
    var samples = Samples(root.dataset.batchId || "");
    var closeTime = Date.parse(root.dataset.closeTime || "") / 1000;
    var timer = null, last = null, polls = 0;

    function draw(state) {
      var p = state ? state.progress : null;
      var data = samples.points(p);
      var end = state && !state.is_open && state.close_time ?
        Date.parse(state.close_time) / 1000 : (isFinite(closeTime) ? closeTime : null);
      var average = state ? state.average_items_per_second : null;
      var items = document.getElementById("chart-items");
      var pages = document.getElementById("chart-pages");
      if (items) {
        drawPanel(items, data.points, [{ key: "items", cls: "items" }],
                  { end: end, average: average });
      }
      if (pages) {
        drawPanel(pages, data.points, [{ key: "cap", cls: "cap" }, { key: "running", cls: "running" }],
                  { end: end, whole: true });
      }
      var source = document.getElementById("chart-source");
      if (source) {
        source.textContent = data.source === "history" ? "(from the batch's history)" :
          "(sampled by this page while it is open)";
      }
      var avg = document.getElementById("chart-average");
      if (avg && average !== null && state && p) {
        avg.textContent = "finished: " + fmt(p.num_completed_items) + " items, " +
          fmt(average, 1) + " items/s on average";
        avg.hidden = false;
      }
    }

    function apply(state) {
      var label = root.querySelector('[data-field="label"]');
      if (label) {
        label.textContent = state.label;
        label.className = "status s-" + state.label.toLowerCase();
      }
      showReason(root, "note", state.note || "");
      showHooks(state.hooks || []);
      showForms("form.when-open", state.is_open);
      if (state.progress) { applyProgress(root, state, bar); } else { applyUnknown(root, state); }
      if (state.is_open && state.progress && !state.stale_at) { samples.add(state.progress); }
      draw(state);
      var sig = signature(state.progress);
      polls += 1;
      if ((last !== null && sig !== last) || polls % DETAILS_EVERY === 0 || !state.is_open) {
        refreshDetails();
      }
      last = sig;
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

    document.addEventListener("batch-orchestra:changed", function () {
      poll();
      refreshDetails();
    });
    draw(null);
    if (root.dataset.open === "1") {
      poll();
      timer = setInterval(poll, interval);
    } else {
      poll();  // once: the average rate and the last state
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
    document.addEventListener("submit", onSubmit);
    var cap = document.getElementById("parallelism-input");
    if (cap) { cap.addEventListener("input", function () { cap.dataset.edited = "1"; }); }
    var root = document.getElementById("batch");
    if (root) { batchPage(root); }
    if (document.body.dataset.page === "list") { listPage(); }
  });
})();
