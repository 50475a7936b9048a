// Live parts of a page: every element with data-fragment is refetched from that address
// every data-refresh-s seconds and its content replaced in place, so a page updates
// without a reload. Each element counts its refreshes in data-refreshed; the element with
// id fragments-status says when the last one happened, or why it failed.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var status = document.getElementById("fragments-status");
  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }
  function watch(element) {
    var every = Number(element.getAttribute("data-refresh-s")) * 1000;
    function refresh() {
      fetch(element.getAttribute("data-fragment"), { credentials: "same-origin" })
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
          element.innerHTML = html;
          var count = Number(element.getAttribute("data-refreshed") || "0") + 1;
          element.setAttribute("data-refreshed", String(count));
          say("Updated " + new Date().toISOString().slice(11, 19) + " UTC.");
          window.setTimeout(refresh, every);
        })
        .catch(function (error) {
          say("Not refreshed: " + error.message + ".");
        });
    }
    window.setTimeout(refresh, every);
  }
  document.querySelectorAll("[data-fragment]").forEach(watch);
});
