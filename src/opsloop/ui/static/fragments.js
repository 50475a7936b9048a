// Live parts of a page: every element with data-fragment is refetched from that address
// every data-refresh-s seconds (by poll.js's loop) and its content replaced in place, so a
// page updates without a reload. Each element counts its refreshes in data-refreshed; the
// element with id fragments-status says when the last one happened, or why it failed.
//
// A form a person is filling in inside a fragment is never wiped: each control that was
// changed since it was drawn (or has the focus) is matched in the new content by its id,
// or a checkbox's or radio's name and value, and keeps its value, its ticks, the focus and
// the text selected. When the new content no longer holds such a control (the item was
// answered elsewhere, say), the fragment is kept as it is until the person is done.
//
// New content equal to what was last put in place is not put in again: replacing a
// control closes a dropdown the person has open (a select's list is drawn by the browser
// and no script can reopen it), so at a fast refresh an unchanged part must stay the same
// elements.
"use strict";
(function () {
  // element -> the HTML last put in it by a refresh.
  var drawn = new WeakMap();
  function keyOf(control) {
    if (control.id) {
      return "#" + control.id;
    }
    if (control.type === "checkbox" || control.type === "radio") {
      return control.name + "=" + control.value;
    }
    return null;
  }
  function changed(control) {
    if (control.type === "checkbox" || control.type === "radio") {
      return control.checked !== control.defaultChecked;
    }
    if (control.tagName === "SELECT") {
      return Array.prototype.some.call(control.options, function (option) {
        return option.selected !== option.defaultSelected;
      });
    }
    return control.value !== control.defaultValue;
  }
  function keep(from, to) {
    if (from.type === "checkbox" || from.type === "radio") {
      to.checked = from.checked;
    } else {
      to.value = from.value;
    }
  }
  // The controls being filled in: key -> control.
  function inUse(element) {
    var used = {};
    element.querySelectorAll("input, select, textarea").forEach(function (control) {
      var key = keyOf(control);
      if (key !== null && (changed(control) || control === document.activeElement)) {
        used[key] = control;
      }
    });
    return used;
  }
  // Put html in element, keeping the controls in use; false (nothing changed) when one
  // of them is missing from html.
  function swap(element, html) {
    if (drawn.get(element) === html) {
      return true;
    }
    var used = inUse(element);
    var fresh = document.createElement("template");
    fresh.innerHTML = html;
    var matches = [];
    fresh.content.querySelectorAll("input, select, textarea").forEach(function (control) {
      var key = keyOf(control);
      if (key !== null && used[key]) {
        matches.push([used[key], control]);
      }
    });
    if (matches.length < Object.keys(used).length) {
      return false;
    }
    var focused = null;
    matches.forEach(function (pair) {
      keep(pair[0], pair[1]);
      if (pair[0] === document.activeElement) {
        focused = pair;
      }
    });
    var selection = null;
    if (focused !== null) {
      try {
        selection = [focused[0].selectionStart, focused[0].selectionEnd];
      } catch (error) {
        selection = null; // some inputs (a number's) refuse to say
      }
    }
    element.replaceChildren(fresh.content);
    drawn.set(element, html);
    if (focused !== null) {
      focused[1].focus();
      // Only text fields have a caret (a select's is undefined, a checkbox's null).
      if (selection !== null && typeof selection[0] === "number") {
        focused[1].setSelectionRange(selection[0], selection[1]);
      }
    }
    return true;
  }
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
          if (!swap(element, html)) {
            throw new Error("kept as it is while you fill in a form it no longer holds");
          }
          var count = Number(element.getAttribute("data-refreshed") || "0") + 1;
          element.setAttribute("data-refreshed", String(count));
          // A part that will not change again (a run that ended) says so: stop polling it.
          if (element.querySelector("[data-final]") !== null) {
            element.removeAttribute("data-fragment");
            return "final";
          }
          return undefined;
        },
        say
      );
    });
  });
})();
