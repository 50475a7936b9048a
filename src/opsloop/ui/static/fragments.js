// Live parts of a page: every element with data-fragment is refetched from that address
// every data-refresh-s seconds (by poll.js's loop) and its content replaced in place, so a
// page updates without a reload. Each element counts its refreshes in data-refreshed; the
// element with id fragments-status says when the last one happened, or why it failed.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var status = document.getElementById("fragments-status");
  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }
  document.querySelectorAll("[data-fragment]").forEach(function (element) {
    window.opsloopPoll(
      element.getAttribute("data-fragment"),
      Number(element.getAttribute("data-refresh-s")) * 1000,
      function (html) {
        element.innerHTML = html;
        var count = Number(element.getAttribute("data-refreshed") || "0") + 1;
        element.setAttribute("data-refreshed", String(count));
      },
      say
    );
  });
});
