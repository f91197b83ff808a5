// A read-only field marked data-select-on-click selects its whole value when clicked, ready to
// copy (the admin's one-time API token). A static file, not an onclick attribute: the
// Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var field = event.target;
    if (field instanceof HTMLInputElement && field.hasAttribute("data-select-on-click")) {
      field.select();
    }
  });
})();
