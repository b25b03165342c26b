// Sortable tables for the dcsbench leaderboard (self-written, no dependencies, no network).
// A click (or Enter) on a header of a table.sortable sorts its rows by that column, using each
// cell's data-sort attribute (numbers for data-type="num", text otherwise); a second click
// reverses the order. Empty values always sort last. Only attributes and textContent are read:
// no HTML from the page is ever re-parsed.
(function () {
  "use strict";

  function cellKey(row, col) {
    var cell = row.cells[col];
    if (!cell) return "";
    var v = cell.getAttribute("data-sort");
    return v === null ? cell.textContent.trim() : v;
  }

  function compare(a, b, numeric) {
    if (a === "" && b === "") return 0;
    if (a === "") return 1;
    if (b === "") return -1;
    if (numeric) {
      var x = parseFloat(a), y = parseFloat(b);
      if (isNaN(x) && isNaN(y)) return 0;
      if (isNaN(x)) return 1;
      if (isNaN(y)) return -1;
      return x - y;
    }
    return a.localeCompare(b);
  }

  function sortBy(table, th) {
    var col = th.cellIndex;
    var numeric = th.getAttribute("data-type") === "num";
    // numbers default to descending (best first), text to ascending
    var dir = th.getAttribute("aria-sort") === (numeric ? "descending" : "ascending") ? -1 : 1;
    if (numeric) dir = -dir;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (r, i) { r._pos = i; });
    rows.sort(function (r1, r2) {
      var k1 = cellKey(r1, col), k2 = cellKey(r2, col);
      if (k1 === "" || k2 === "") return compare(k1, k2, numeric) || r1._pos - r2._pos;
      return dir * compare(k1, k2, numeric) || r1._pos - r2._pos;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
  }

  function init() {
    var tables = document.querySelectorAll("table.sortable");
    Array.prototype.forEach.call(tables, function (table) {
      if (!table.tHead || !table.tBodies.length) return;
      table.setAttribute("data-sort-ready", "1");
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
        th.addEventListener("click", function () { sortBy(table, th); });
        th.addEventListener("keydown", function (e) {
          if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, th); }
        });
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
