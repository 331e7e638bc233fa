// Sortable tables (click a column title) and the search box of the index and catalog.
// No library: plain DOM. Sort keys come from data-sort attributes (else the cell text).
(function () {
  "use strict";
  function cellKey(row, index) {
    var cell = row.cells[index];
    if (!cell) return "";
    return cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
  }
  function sortTable(table, index, type, descending) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellKey(a, index), y = cellKey(b, index);
      if (type === "number") {
        var fx = x === "" ? NaN : parseFloat(x), fy = y === "" ? NaN : parseFloat(y);
        if (isNaN(fx) && isNaN(fy)) return 0;
        if (isNaN(fx)) return 1;   // empty cells last
        if (isNaN(fy)) return -1;
        return descending ? fy - fx : fx - fy;
      }
      return descending ? y.localeCompare(x) : x.localeCompare(y);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, index) {
      var type = th.getAttribute("data-type");
      if (!type || type === "none") return;
      th.tabIndex = 0;
      function activate() {
        var descending = th.getAttribute("aria-sort") === "ascending";
        Array.prototype.forEach.call(heads, function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        sortTable(table, index, type, descending);
      }
      th.addEventListener("click", activate);
      th.addEventListener("keydown", function (event) { if (event.key === "Enter") activate(); });
    });
  });
  // Search box and the "never observed" toggle: a row shows when it matches the search
  // and is observed (or the toggle shows the sources never observed).
  var search = document.getElementById("search");
  if (search) {
    var table = document.querySelector("table.sortable");
    var none = document.getElementById("no-match");
    var unobserved = document.getElementById("show-unobserved");
    var filter = function () {
      var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      var showAll = !unobserved || unobserved.checked;
      var shown = 0;
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        var text = (row.getAttribute("data-search") || row.textContent).toLowerCase();
        var match = words.every(function (word) { return text.indexOf(word) >= 0; });
        var show = match && (showAll || !row.classList.contains("unobserved"));
        row.hidden = !show;
        if (show) shown += 1;
      });
      if (none) none.hidden = shown > 0;
    };
    search.addEventListener("input", filter);
    if (unobserved) unobserved.addEventListener("change", filter);
  }
})();
