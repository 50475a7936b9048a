// Draws each figure of the page: a <div data-figure=ID> and the JSON document in the
// <script type="application/json" id=ID> beside it (no inline script runs on these pages).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-figure]").forEach(function (node) {
    var source = document.getElementById(node.getAttribute("data-figure"));
    var figure = JSON.parse(source.textContent);
    window.Plotly.newPlot(node, figure.data, figure.layout, {
      displaylogo: false,
      responsive: true,
    }).then(function () {
      node.setAttribute("data-drawn", "true");
    });
  });
});
