// Keyboard shortcuts of the review queue. Plain script, no build step; every action also has a
// button, so nothing here is required to use Flowdesk.
(function () {
  "use strict";
  function typing(event) {
    var el = event.target;
    return el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName);
  }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("table.queue tr[data-href]")); }
  var selected = -1;
  function mark(all) {
    all.forEach(function (row, i) { row.classList.toggle("selected", i === selected); });
  }
  function select(index) {
    var all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(all.length - 1, index));
    mark(all);
    all[selected].focus();
  }
  function clickKey(name) {
    var button = document.querySelector('[data-key="' + name + '"]');
    if (button) button.click();
    return !!button;
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    var all = rows();
    switch (event.key) {
      case "j": select(selected + 1); break;
      case "k": select(selected - 1); break;
      case "o": case "Enter":
        if (all[selected]) window.location.href = all[selected].dataset.href; else return;
        break;
      case "n": var next = document.getElementById("get-next"); if (next) next.click(); else return; break;
      case "c":
        var claim = all[selected] && all[selected].querySelector("button[data-claim]");
        if (claim) claim.click(); else if (!clickKey("c")) return;
        break;
      case "/": var search = document.querySelector('input[name="q"]'); if (search) search.focus(); else return; break;
      default: return;
    }
    event.preventDefault();
  });
  // Rows swapped by the live refresh keep the selection.
  document.addEventListener("htmx:afterSwap", function () { mark(rows()); });
})();
