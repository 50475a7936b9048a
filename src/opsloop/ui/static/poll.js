// The dashboard's one poll loop, for the parts of a page that refresh in place: every
// `every` milliseconds, fetch `address` (with the session's cookie) and hand the HTML to
// `apply`, which puts it in place (it may return a promise, such as a chart's redraw);
// `say` then gets the time of the update, and the next fetch is scheduled, unless `apply`
// returned "final" (what it shows will not change again: a run that ended, say).
//
// A failed refresh (the server restarting or unreachable, an answer that is not 2xx, a
// session that ended so the server sends the browser to log in) does not stop the loop:
// `say` gets why and when the next try is, and the wait doubles with each failure in a
// row, up to `patience` milliseconds (default one minute, or `every` if longer), so a
// server that is down is not hammered and one that comes back is found again. The first
// update after failures puts the wait back to `every`.
"use strict";
window.opsloopPoll = function (address, every, apply, say, patience) {
  var cap = Math.max(every, patience || 60000);
  var failures = 0;
  function retry(error) {
    failures += 1;
    var wait = Math.min(every * Math.pow(2, failures), cap);
    say(
      "Not refreshed: " + error.message + ". Trying again in " +
        Math.round(wait / 1000) + " s (failure " + failures + " in a row)."
    );
    window.setTimeout(refresh, wait);
  }
  function refresh() {
    fetch(address, { credentials: "same-origin" })
      .then(undefined, function () {
        // The network's own error (a TypeError) names no cause worth showing.
        throw new Error("the server did not answer");
      })
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
      .then(
        function (outcome) {
          failures = 0;
          var at = new Date().toISOString().slice(11, 19) + " UTC";
          if (outcome === "final") {
            say("Updated " + at + " for the last time: nothing here changes any more.");
            return;
          }
          say("Updated " + at + ".");
          window.setTimeout(refresh, every);
        },
        retry
      );
  }
  window.setTimeout(refresh, every);
};
