/* neudep dependency atlas: filters and sorts the atlas table in the browser, offline.
   The data (written at build time by neudep_utils.report.atlas.write_atlas) are scripts in the
   site's _atlas/ folder: atlas_classes.js calls neudepAtlasClasses([[name, wnid], ...]) and each
   atlas_<model>.js calls neudepAtlasAdd({model, fields, rows}). They are loaded on the first use
   of the controls, with script tags (which work from file:// too). Acts only on a page holding
   <div id="neudep-atlas">. */
(function () {
  "use strict";
  var classes = null, data = {}, expected = 0, loaded = 0;
  var sortCol = "name", sortDir = 1, MAX_ROWS = 200;

  function base() {
    var s = document.querySelector('script[src*="atlas.js"]');
    return s ? s.src.replace(/_static\/atlas\.js.*$/, "_atlas/") : "_atlas/";
  }
  function pct(v) { return v === null || v === undefined ? "n/a" : (100 * v).toFixed(1) + "%"; }
  function num(v) { return v === null || v === undefined ? "n/a" : v.toFixed(3); }
  function esc(t) {
    return String(t).replace(/[&<>"]/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c];
    });
  }

  window.neudepAtlasClasses = function (names) { classes = names; done(); };
  window.neudepAtlasAdd = function (payload) {
    var f = {};
    payload.fields.forEach(function (name, i) { f[name] = i; });
    data[payload.model] = payload.rows.map(function (r) {
      return {model: payload.model, cls: r[f["class"]], k: r[f.k], partners: r[f.partners],
              r2: r[f.r2], acc_kept: r[f.acc_kept], acc_original: r[f.acc_original],
              ap: r[f.ap], ap_original: r[f.ap_original], n: r[f.n_images]};
    });
    done();
  };

  function done() {
    loaded += 1;
    var st = document.getElementById("atlas-status");
    if (loaded < expected) { if (st) st.textContent = "loading " + loaded + "/" + expected; return; }
    render();
  }

  function matches(q, i) {
    if (!q) return true;
    var c = classes[i];
    return String(i) === q || c[1].toLowerCase() === q || c[0].toLowerCase().indexOf(q) >= 0;
  }

  function render() {
    var root = document.getElementById("neudep-atlas");
    if (!root || !classes) return;
    var q = document.getElementById("atlas-q").value.trim().toLowerCase();
    var model = document.getElementById("atlas-model").value;
    var k = document.getElementById("atlas-k").value;
    var models = root.getAttribute("data-models").split(" ").filter(Boolean);
    var rows = [], missing = [];
    models.forEach(function (m) {
      if (model && m !== model) return;
      var seen = {};
      (data[m] || []).forEach(function (r) {
        if (!matches(q, r.cls)) return;
        seen[r.cls] = true;
        if (k && String(r.k) !== k) return;
        rows.push(r);
      });
      if (q) {  /* a category this profile did not fit is listed as such */
        for (var i = 0; i < classes.length; i++) {
          if (matches(q, i) && !seen[i]) missing.push({model: m, cls: i});
        }
      }
    });
    rows.forEach(function (r) { r.name = classes[r.cls][0]; });
    rows.sort(function (a, b) {
      var x = a[sortCol], y = b[sortCol];
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      if (x < y) return -sortDir;
      if (x > y) return sortDir;
      return a.model < b.model ? -1 : a.model > b.model ? 1 : a.k - b.k;
    });
    var html = [];
    rows.slice(0, MAX_ROWS).forEach(function (r) {
      var parts = r.partners.map(function (p) {
        return esc(classes[p[0]][0]) + " <span class=\"atlas-w\">(" + p[1].toFixed(3) +
               ", " + p[2] + ")</span>";
      }).join("; ");
      html.push("<tr><td>" + esc(r.model) + "</td><td><b>" + esc(r.name) + "</b> <span " +
                "class=\"atlas-w\">" + esc(classes[r.cls][1]) + ", " + r.cls + "</span></td><td>" +
                r.k + "</td><td>" + num(r.r2) + "</td><td>" + pct(r.acc_kept) + " (" +
                pct(r.acc_original) + ")</td><td>" + num(r.ap) + " (" + num(r.ap_original) +
                ")</td><td class=\"atlas-partners\">" + parts + "</td></tr>");
    });
    missing.slice(0, MAX_ROWS).forEach(function (r) {
      html.push("<tr class=\"atlas-missing\"><td>" + esc(r.model) + "</td><td><b>" +
                esc(classes[r.cls][0]) + "</b> <span class=\"atlas-w\">" + esc(classes[r.cls][1]) +
                ", " + r.cls + "</span></td><td colspan=\"5\">not among the categories this " +
                "profile fitted</td></tr>");
    });
    root.querySelector("tbody").innerHTML = html.join("");
    var n = 0;
    models.forEach(function (m) { n += (data[m] || []).length; });
    document.getElementById("atlas-status").textContent =
      rows.length + " of " + n + " dependencies" +
      (rows.length > MAX_ROWS ? " (first " + MAX_ROWS + " shown; narrow the search)" : "") +
      (missing.length ? "; " + missing.length + " not fitted" : "");
  }

  function start() {
    var root = document.getElementById("neudep-atlas");
    if (!root) return;
    var files = ["atlas_classes.js"].concat(
      root.getAttribute("data-files").split(" ").filter(Boolean));
    expected = files.length;
    var requested = false;
    function load() {  /* lazy: the data are fetched on the first use of the controls */
      if (requested) return;
      requested = true;
      document.getElementById("atlas-status").textContent = "loading the atlas...";
      var b = base();
      files.forEach(function (f) {
        var s = document.createElement("script");
        s.src = b + f;
        s.async = true;
        s.onerror = function () {
          document.getElementById("atlas-status").textContent = "could not load " + f;
        };
        document.body.appendChild(s);
      });
    }
    ["atlas-q", "atlas-model", "atlas-k"].forEach(function (id) {
      var el = document.getElementById(id);
      el.addEventListener("focus", load);
      el.addEventListener("input", function () { load(); render(); });
    });
    document.getElementById("atlas-status").textContent =
      "type a category (or click the box) to load the atlas";
    root.querySelectorAll("th[data-col]").forEach(function (th) {
      th.style.cursor = "pointer";
      th.title = "sort";
      th.addEventListener("click", function () {
        var col = th.getAttribute("data-col");
        sortDir = col === sortCol ? -sortDir : (col === "name" || col === "model" ? 1 : -1);
        sortCol = col;
        render();
      });
    });
    var q = new URLSearchParams(window.location.search).get("q");
    if (q) { document.getElementById("atlas-q").value = q; load(); }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
