// The console's only script besides htmx: keyboard actions on the review
// queue and review pages, and progress-bar widths (CSP forbids inline
// style attributes set by script-less markup, so widths come from data-pct).
(function () {
  "use strict";
  function widths(root) {
    root.querySelectorAll("[data-pct]").forEach(function (el) {
      var v = parseFloat(el.getAttribute("data-pct"));
      if (!isNaN(v)) { el.style.width = Math.max(0, Math.min(100, v)) + "%"; }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    widths(document);
    // Tests wait for this before they type: the key handlers and htmx
    // (whose script runs first) are in place.
    document.documentElement.setAttribute("data-ready", "1");
  });
  document.addEventListener("htmx:afterSwap", function (e) { widths(e.target); });

  function typing(e) {
    var t = e.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }
  function click(sel) {
    var el = document.querySelector(sel);
    if (el) { el.click(); return true; }
    return false;
  }
  // Review queue: j/k move, Enter or o opens, c claims the selected item.
  // Review item: c claim, l legit, f fraud, u unsure, n next.
  document.addEventListener("keydown", function (e) {
    if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) { return; }
    var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-review]"));
    if (rows.length) {
      var i = rows.findIndex(function (r) { return r.classList.contains("sel"); });
      if (e.key === "j" || e.key === "k") {
        if (i >= 0) { rows[i].classList.remove("sel"); }
        i = e.key === "j" ? Math.min(rows.length - 1, i + 1) : Math.max(0, i - 1);
        rows[i].classList.add("sel");
        e.preventDefault();
        return;
      }
      if ((e.key === "Enter" || e.key === "o") && i >= 0) {
        window.location = rows[i].getAttribute("data-href");
        return;
      }
    }
    var map = { c: "#claim", l: "#close-legit", f: "#close-fraud", u: "#close-unsure", n: "#next-item" };
    if (map[e.key] && click(map[e.key])) { e.preventDefault(); }
  });
})();

// The rule editor's did-you-mean: a "Use x" button replaces the unknown
// name at its line:column (or its first occurrence) and re-validates.
document.addEventListener("click", function (e) {
  var b = e.target.closest ? e.target.closest("button.fix") : null;
  if (!b) { return; }
  var ta = document.getElementById("f-expression");
  if (!ta) { return; }
  var from = b.getAttribute("data-from"), to = b.getAttribute("data-to");
  var line = parseInt(b.getAttribute("data-line"), 10), col = parseInt(b.getAttribute("data-col"), 10);
  var v = ta.value, at = -1;
  if (line > 0 && col > 0) {
    var lines = v.split("\n"), off = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) { off += lines[i].length + 1; }
    off += col - 1;
    if (v.substr(off, from.length) === from) { at = off; }
  }
  if (at < 0) { at = v.indexOf(from); }
  if (at < 0) { return; }
  ta.value = v.slice(0, at) + to + v.slice(at + from.length);
  ta.dispatchEvent(new Event("input", { bubbles: true }));
  ta.focus();
});
