// The dashboard's one poll loop, for the parts of a page that refresh in place: every
// `every` milliseconds, fetch `address` (with the session's cookie) and hand the HTML to
// `apply`, which puts it in place (it may return a promise, such as a chart's redraw);
// `say` then gets the time of the update, and the next fetch is scheduled. A session that
// ended (the server sends the browser to log in) or an answer that is not 2xx stops the
// loop, and `say` gets why.
"use strict";
window.opsloopPoll = function (address, every, apply, say) {
  function refresh() {
    fetch(address, { credentials: "same-origin" })
      .then(function (response) {
        if (response.redirected) {
          throw new Error("the session ended: reload the page to log in again");
        }
        if (!response.ok) {
          throw new Error("the server answered " + response.status);
        }
        return response.text();
      })
      .then(apply)
      .then(function () {
        say("Updated " + new Date().toISOString().slice(11, 19) + " UTC.");
        window.setTimeout(refresh, every);
      })
      .catch(function (error) {
        say("Not refreshed: " + error.message + ".");
      });
  }
  window.setTimeout(refresh, every);
};
