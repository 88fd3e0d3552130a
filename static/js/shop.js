// Shopfront's own few lines of JavaScript. Every page works without them:
// they make the quantity steppers step in place, submit the sort menu on
// change, and keep the cart badge of other open tabs in step.
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

  // Other tabs: after a cart change here, tell them the new header; they
  // swap it in and, on the cart page, reload the lines.
  if (!("BroadcastChannel" in window)) return;
  var channel = new BroadcastChannel("shopfront-cart");
  document.addEventListener("htmx:afterSettle", function (e) {
    var path = e.detail.requestConfig && e.detail.requestConfig.path;
    if (!path || path.indexOf("/cart") !== 0 || !e.detail.successful) return;
    var badge = document.getElementById("cart-badge");
    var account = document.getElementById("header-account");
    channel.postMessage({
      badge: badge ? badge.outerHTML : "",
      account: account ? account.outerHTML : ""
    });
  });
  channel.onmessage = function (e) {
    ["badge", "account"].forEach(function (k) {
      var html = e.data && e.data[k];
      var id = k === "badge" ? "cart-badge" : "header-account";
      var old = document.getElementById(id);
      if (!html || !old) return;
      var t = document.createElement("template");
      t.innerHTML = html;
      var fresh = t.content.firstElementChild;
      if (fresh && fresh.id === id) old.replaceWith(fresh);
    });
    if (document.getElementById("cart-lines") && window.htmx) {
      window.htmx.ajax("GET", "/cart", { target: "#cart-lines", select: "#cart-lines", swap: "outerHTML" });
    }
  };
})();
