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

  // Moving work (supervisors, #bulk-move): the live refresh replaces the rows with fresh,
  // unticked ones, so it waits while any box is ticked; a move or unticking them all lets it go
  // on. (Keeping ticks across swaps would tick rows whose item has meanwhile changed hands.)
  function ticks() { return Array.prototype.slice.call(document.querySelectorAll('#queue-rows input[name="item"]')); }
  function tickedCount() { return ticks().filter(function (box) { return box.checked; }).length; }
  function showTicks() {
    var count = tickedCount(), all = ticks();
    var paused = document.getElementById("refresh-paused");
    if (paused) paused.hidden = count === 0;
    var shown = document.getElementById("move-ticked");
    if (shown) shown.textContent = count ? "(" + count + " ticked)" : "";
    // "Move work" stays folded until a row is ticked (on a phone it would fill the screen).
    var mover = document.getElementById("bulk-move-details");
    if (mover && count) mover.open = true;
    var page = document.getElementById("tick-page");
    if (page) {
      page.hidden = all.length === 0;
      page.checked = all.length > 0 && count === all.length;
      page.indeterminate = count > 0 && count < all.length;
    }
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt.id === "queue-rows" && tickedCount()) event.preventDefault();
  });
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.id === "tick-page") ticks().forEach(function (each) { each.checked = box.checked; });
    else if (box.name !== "item") return;
    // Ticking rows means "these": not all matching the filter.
    var ticked = document.querySelector('#bulk-move-form input[name="scope"][value="ticked"]');
    if (ticked && tickedCount()) ticked.checked = true;
    showTicks();
  });
  document.addEventListener("htmx:afterSettle", showTicks);
  showTicks();

  // The claim's clock. The server says how many seconds are left; the page counts down with its
  // own clock (so the two clocks need not agree), warns two minutes before the end with one
  // button to keep the claim, and shows the end the moment it comes: no field stays editable
  // under a claim that is gone.
  var WARN_SECONDS = 120;
  function leaseDeadline(lease) {
    if (!lease.dataset.deadline) {
      lease.dataset.deadline = String(Date.now() + Number(lease.dataset.secondsLeft || 0) * 1000);
    }
    return Number(lease.dataset.deadline);
  }
  function claimEnded() {
    var status = document.getElementById("item-status");
    if (status) { status.textContent = "Claim ended"; status.className = "badge badge-ended"; }
    var fields = document.getElementById("schema-form");
    if (fields) fields.disabled = true;
    document.querySelectorAll("#review-form button").forEach(function (b) { b.disabled = true; });
    var lease = document.getElementById("lease");
    if (lease) lease.textContent = "Your claim has ended";
    var warning = document.getElementById("lease-warning");
    if (warning) warning.hidden = true;
    var ended = document.getElementById("lease-ended");
    if (ended && ended.hidden) { ended.hidden = false; ended.querySelector("button").focus(); }
  }
  function tick() {
    var lease = document.getElementById("lease");
    if (!lease || !lease.hasAttribute("data-seconds-left")) return;
    var left = Math.ceil((leaseDeadline(lease) - Date.now()) / 1000);
    if (left <= 0) { claimEnded(); return; }
    lease.textContent = "Your claim: " + Math.ceil(left / 60) + " min left";
    var warning = document.getElementById("lease-warning");
    if (warning) {
      warning.hidden = left > WARN_SECONDS;
      var shown = warning.querySelector("[data-left]");
      if (shown) shown.textContent = left >= 60 ? Math.ceil(left / 60) + " min" : left + " s";
    }
  }
  setInterval(tick, 1000);
  document.addEventListener("htmx:afterSettle", tick);

  // "Get next item" and "Submit and next" claim an item and load its page: focus its first
  // field there, as a claim made on the page does, rather than leave a keyboard user at the top
  // with eight stops to Tab through. The loaded page cannot tell how it was reached, so the
  // button leaves it a note for one page load.
  var FIRST_FIELD = "#schema-form input:not([type=hidden]), #schema-form select, #schema-form textarea";
  var FOCUS_NOTE = "flowdesk.focusFirstField";
  document.addEventListener("submit", function (event) {
    var by = event.submitter;
    if (!by || !(by.id === "get-next" || (by.name === "next" && by.form && by.form.id === "review-form"))) return;
    try { sessionStorage.setItem(FOCUS_NOTE, "1"); } catch (e) { /* storage off: no harm */ }
  }, true);
  // A submit that stays on this page (errors, a refusal) leaves no note for a later load.
  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    if (event.detail.elt.id !== "review-form" || (xhr && xhr.getResponseHeader("HX-Redirect"))) return;
    try { sessionStorage.removeItem(FOCUS_NOTE); } catch (e) { /* storage off */ }
  });
  try {
    if (sessionStorage.getItem(FOCUS_NOTE)) {
      sessionStorage.removeItem(FOCUS_NOTE);
      var first = document.querySelector(FIRST_FIELD);
      if (first) first.focus();
    }
  } catch (e) { /* storage off: focus stays at the top */ }

  // Focus after the item panel is swapped: on the error summary when there are errors, on the
  // first field after a claim, on a row just added, and otherwise where it was (or on the status,
  // never <body>). It moves with the swap itself: htmx's settle, a moment later, would move it
  // while someone (or a test) is already typing in the new panel, so `autofocus` is taken off.
  var lastFocusId = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var el = document.activeElement;
    lastFocusId = el && el.id && el !== document.body ? el.id : null;
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var panel = event.target;
    if (!panel || panel.id !== "item-panel" || !panel.querySelectorAll) return;
    var added = null;
    Array.prototype.forEach.call(panel.querySelectorAll("[autofocus]"), function (el) {
      added = added || el;
      el.removeAttribute("autofocus");
    });
    var summary = panel.querySelector("#sf-summary");
    var path = event.detail.pathInfo && event.detail.pathInfo.requestPath || "";
    var target = null;
    if (summary) target = summary;
    else if (/\/claim\/$/.test(path)) {
      target = panel.querySelector(FIRST_FIELD);
    } else if (added) {
      target = added;
    } else if (document.activeElement === document.body || !document.activeElement) {
      target = (lastFocusId && document.getElementById(lastFocusId)) || panel.querySelector("#item-status");
    }
    if (target) target.focus({ preventScroll: target === summary ? false : true });
  });
})();
