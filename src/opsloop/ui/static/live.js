// The live deployment page: every data-refresh-s seconds, fetch the panel (its table and
// chart data) and put it in place, redrawing the chart with Plotly.react so zoom survives.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var panel = document.querySelector("[data-refresh]");
  if (!panel) {
    return;
  }
  var every = Number(panel.getAttribute("data-refresh-s")) * 1000;
  var status = document.getElementById("live-status");
  var plot = document.querySelector("[data-figure]");
  function refresh() {
    fetch(panel.getAttribute("data-refresh"), { credentials: "same-origin" })
      .then(function (response) {
        if (response.redirected) {
          throw new Error("the session ended: reload the page to log in again");
        }
        if (!response.ok) {
          throw new Error("the server answered " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        panel.innerHTML = html;
        var source = document.getElementById(plot.getAttribute("data-figure"));
        var figure = JSON.parse(source.textContent);
        return window.Plotly.react(plot, figure.data, figure.layout);
      })
      .then(function () {
        var count = Number(plot.getAttribute("data-refreshed") || "0") + 1;
        plot.setAttribute("data-refreshed", String(count));
        status.textContent = "Updated " + new Date().toISOString().slice(11, 19) + " UTC.";
        window.setTimeout(refresh, every);
      })
      .catch(function (error) {
        status.textContent = "Not refreshed: " + error.message + ".";
      });
  }
  window.setTimeout(refresh, every);
});
