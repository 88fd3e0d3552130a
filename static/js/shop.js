// Shopfront's own few lines of JavaScript. Every page works without them:
// they make the quantity steppers step in place, and submit the sort menu on
// change.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Steppers: − and + change the field (links without JavaScript).
  document.addEventListener("click", function (e) {
    var step = e.target.closest("[data-step]");
    if (!step) return;
    var box = step.closest("[data-stepper]");
    var input = box && box.querySelector("input[type=number]");
    if (!input) return;
    e.preventDefault();
    var lo = parseInt(input.min || "0", 10), hi = parseInt(input.max || "99", 10);
    var v = (parseInt(input.value, 10) || 0) + parseInt(step.dataset.step, 10);
    input.value = String(Math.min(hi, Math.max(lo, v)));
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });
  function showSteppers(root) {
    root.querySelectorAll("[data-stepper] button[data-step]").forEach(function (b) { b.hidden = false; });
  }
  document.addEventListener("DOMContentLoaded", function () { showSteppers(document); });
  document.addEventListener("htmx:afterSettle", function (e) { showSteppers(e.target); });

  // The sort menu submits itself.
  document.addEventListener("change", function (e) {
    if (e.target.matches("select[data-autosubmit]")) e.target.form.requestSubmit();
  });
})();
