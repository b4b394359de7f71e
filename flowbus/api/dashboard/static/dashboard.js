// flowbus dashboard: times in the viewer's zone, and the zone offset sent with time filters.
// No inline scripts: the page's Content-Security-Policy allows this file and htmx only.
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  });

  function localTimes(root) {
    root.querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var at = new Date(el.getAttribute("datetime"));
      if (!isNaN(at)) {
        el.title = el.textContent;
        el.textContent = format.format(at);
        el.setAttribute("data-local", "");
      }
    });
    root.querySelectorAll("input[data-tz-offset]").forEach(function (el) {
      el.value = String(-new Date().getTimezoneOffset());
    });
  }

  function selectAll(event) {
    var box = event.target;
    if (!box.matches("input[data-select-all]")) return;
    var form = box.closest("form") || document;
    form.querySelectorAll("input[type=checkbox][name='" + box.getAttribute("data-select-all") + "']")
      .forEach(function (each) { each.checked = box.checked; });
  }

  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
  document.addEventListener("htmx:afterSwap", function (event) { localTimes(event.detail.target.parentNode || document); });
  document.addEventListener("htmx:load", function (event) { localTimes(event.detail.elt.parentNode || document); });
  document.addEventListener("change", selectAll);
})();
