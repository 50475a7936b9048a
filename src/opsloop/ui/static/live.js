// The live deployment page: every data-refresh-s seconds (by poll.js's loop), fetch the
// panel (its table and chart data) and put it in place, redrawing the chart with
// Plotly.react so zoom survives.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var panel = document.querySelector("[data-refresh]");
  if (!panel) {
    return;
  }
  var status = document.getElementById("live-status");
  var plot = document.querySelector("[data-figure]");
  window.opsloopPoll(
    panel.getAttribute("data-refresh"),
    Number(panel.getAttribute("data-refresh-s")) * 1000,
    function (html) {
      panel.innerHTML = html;
      var source = document.getElementById(plot.getAttribute("data-figure"));
      var figure = JSON.parse(source.textContent);
      return window.Plotly.react(plot, figure.data, figure.layout).then(function () {
        var count = Number(plot.getAttribute("data-refreshed") || "0") + 1;
        plot.setAttribute("data-refreshed", String(count));
      });
    },
    function (text) {
      status.textContent = text;
    }
  );
});
