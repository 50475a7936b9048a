// Draws each figure of the page: a <div data-figure=ID> and the JSON document in the
// <script type="application/json" id=ID> beside it (no inline script runs on these pages).
// A point whose customdata is a path on this server ("/...") opens it when clicked.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-figure]").forEach(function (node) {
    var source = document.getElementById(node.getAttribute("data-figure"));
    var figure = JSON.parse(source.textContent);
    window.Plotly.newPlot(node, figure.data, figure.layout, {
      displaylogo: false,
      responsive: true,
    }).then(function () {
      node.on("plotly_click", function (event) {
        var target = event.points.length ? event.points[0].customdata : null;
        if (typeof target === "string" && /^\/(?![\/\\])/.test(target)) {
          window.location.assign(target);
        }
      });
      node.setAttribute("data-drawn", "true");
    });
  });
});
