// Schema forms re-render parts of themselves (a conditional, a row added) while people type.
// The server renders the part from the values that were sent; anything typed, ticked or chosen
// after that request left is put back over the fresh part, the caret and focus stay where they
// were, and the error summary drops what the page no longer shows. Plain script, no build step.
(function () {
  "use strict";
  var inFlight = new WeakMap(); // xhr -> {form, sent, live, focus}

  function formOf(target) {
    var fieldset = target && target.closest ? target.closest(".schema-form") : null;
    if (!fieldset && target && target.querySelector) fieldset = target.querySelector(".schema-form");
    return fieldset ? fieldset.closest("form") : null;
  }

  function valuesOf(form) {
    var values = {};
    new FormData(form).forEach(function (value, name) {
      if (typeof value !== "string" || name === "csrfmiddlewaretoken") return;
      (values[name] = values[name] || []).push(value);
    });
    return values;
  }

  function same(a, b) {
    a = a || []; b = b || [];
    return a.length === b.length && a.every(function (v, i) { return v === b[i]; });
  }

  function focusOf(form) {
    var el = document.activeElement;
    if (!el || !el.id || !form.contains(el)) return null;
    var caret = null;
    try { caret = [el.selectionStart, el.selectionEnd]; } catch (e) { /* not a text field */ }
    return { id: el.id, caret: caret };
  }

  function restore(form, name, values) {
    var controls = Array.prototype.filter.call(form.elements, function (el) { return el.name === name; });
    controls.forEach(function (el) {
      if (el.type === "checkbox" || el.type === "radio") {
        el.checked = values.indexOf(el.value) !== -1;
      } else if (el.tagName === "SELECT") {
        Array.prototype.forEach.call(el.options, function (o) { o.selected = values.indexOf(o.value) !== -1; });
      } else if (values.length) {
        el.value = values[0];
      }
    });
  }

  // The error summary lists only the problems the page still shows.
  function refreshSummary(form) {
    var summary = form.querySelector(".sf-summary");
    if (!summary) return;
    Array.prototype.forEach.call(summary.querySelectorAll("li"), function (li) {
      var link = li.querySelector("a[href^='#']");
      if (!link) return;
      var target = document.getElementById(link.getAttribute("href").slice(1));
      var field = target && (target.closest(".sf-field") || target.closest("fieldset"));
      if (!field || !field.querySelector(".errorlist")) li.remove();
    });
    var left = summary.querySelectorAll("li").length;
    if (!left) { summary.remove(); return; }
    var count = summary.querySelector("[data-count]");
    if (count) count.textContent = "Please fix " + left + " problem" + (left === 1 ? "" : "s") + ":";
  }

  // Every post that carries the form's fields says which reading of this page it is: the server
  // keeps the latest reading as the draft, whichever of a re-render and an autosave arrives last.
  var pageLoad = Math.random().toString(36).slice(2, 12) + "-" + Date.now().toString(36);
  var readings = 0;

  document.addEventListener("htmx:configRequest", function (event) {
    var data = event.detail.formData;
    if (data && data.has("~form")) data.set("~reading", pageLoad + ":" + (++readings));
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt.tagName === "FORM") return; // a whole submit replaces the form; nothing to merge
    var form = formOf(event.detail.target);
    if (!form || !form.contains(elt)) return;
    // Removing a row renumbers the rows after it, so what was typed meanwhile cannot be put back
    // by name; adding one renumbers nothing, and the rows already there keep their typing.
    var renumbers = elt.name === "~action" && String(elt.value).indexOf("remove:") === 0;
    inFlight.set(event.detail.xhr, { form: form, sent: renumbers ? null : valuesOf(form) });
  });

  // While a part is being swapped, the old part and the new one are both in the form for a
  // moment, and removing a focused field that was typed in fires its "change" right then: an
  // autosave serialized at that moment would carry every field twice. Requests asked for during
  // the swap wait until it is over (and what was typed has been put back).
  var swapping = new WeakMap(); // form -> requests waiting for the swap to end

  document.addEventListener("htmx:confirm", function (event) {
    var form = event.detail.elt.closest && event.detail.elt.closest("form");
    if (!form || !swapping.has(form)) return;
    event.preventDefault();
    swapping.get(form).push(event.detail.issueRequest);
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var state = inFlight.get(event.detail.xhr);
    if (!state) return;
    state.live = valuesOf(state.form);
    state.focus = focusOf(state.form);
    if (event.detail.shouldSwap) swapping.set(state.form, []);
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var state = inFlight.get(event.detail.xhr);
    if (!state) return;
    inFlight.delete(event.detail.xhr);
    var form = state.form;
    var waiting = swapping.get(form) || [];
    swapping.delete(form);
    if (state.sent) {
      var names = Object.keys(state.live).concat(Object.keys(state.sent));
      names.forEach(function (name) {
        if (name.indexOf("~") !== -1 || same(state.live[name], state.sent[name])) return;
        restore(form, name, state.live[name] || []);
      });
    }
    // A row added marks its first field `autofocus`. htmx would focus it when the part settles,
    // a moment later, and take the caret from someone already typing on; it moves here, at the
    // swap, and only if the focus went away with the old part (the button pressed).
    var wanted = null;
    if (event.target.querySelectorAll) {
      Array.prototype.forEach.call(event.target.querySelectorAll("[autofocus]"), function (el) {
        wanted = wanted || el;
        el.removeAttribute("autofocus");
      });
    }
    var lost = document.activeElement === document.body || !document.activeElement;
    var again = lost && state.focus ? document.getElementById(state.focus.id) : null;
    if (again) {
      again.focus({ preventScroll: true });
      if (state.focus.caret && state.focus.caret[0] !== null) {
        try { again.setSelectionRange(state.focus.caret[0], state.focus.caret[1]); } catch (e) { /* no caret */ }
      }
    } else if (lost && wanted) {
      wanted.focus();
    }
    refreshSummary(form);
    waiting.forEach(function (issue) { issue(true); });
  });

  // htmx binds a fresh part's controls only when it settles, a moment after the swap: a choice
  // made in that moment (or put back above) fires no re-render, and the part would show the
  // branch of the old choice. Once bound, any control that no longer holds what the server
  // rendered asks again.
  function changedSinceRendered(el) {
    if (el.tagName === "SELECT") {
      return Array.prototype.some.call(el.options, function (o) { return o.selected !== o.defaultSelected; });
    }
    if (el.type === "checkbox" || el.type === "radio") return el.checked !== el.defaultChecked;
    return el.value !== el.defaultValue;
  }

  document.addEventListener("htmx:load", function (event) {
    var root = event.target;
    if (!root.querySelectorAll || !formOf(root)) return;
    var stale = Array.prototype.find.call(
      root.querySelectorAll("[hx-post][hx-trigger='change']"),
      function (el) { return changedSinceRendered(el) && !(el.type === "radio" && !el.checked); }
    );
    if (stale) htmx.trigger(stale, "change");
  });
})();
