// Click (or Enter on) a header to sort its table by that column; numbers sort by their
// data-sort value, missing values stay last in both directions.
(function () {
  function key(cell) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) return cell.textContent.trim().toLowerCase();
    return raw === "" ? null : parseFloat(raw);
  }
  function order(a, b, ascending) {
    if (a === null && b === null) return 0;
    if (a === null) return 1;
    if (b === null) return -1;
    var sign = a < b ? -1 : a > b ? 1 : 0;
    return ascending ? sign : -sign;
  }
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (th, index) {
      th.tabIndex = 0;
      function sort() {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          return order(key(a.cells[index]), key(b.cells[index]), ascending);
        });
        rows.forEach(function (row) { body.appendChild(row); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          sort();
        }
      });
    });
  });
})();
