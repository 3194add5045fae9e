// Progressive enhancement: on narrow screens the main navigation folds behind a "Menu" button.
// Without JavaScript the navigation is a list that wraps under the header, so nothing is out of reach.
(function () {
  var button = document.querySelector(".menu-toggle");
  var nav = document.getElementById("main-nav");
  if (!button || !nav) return;
  var narrow = window.matchMedia("(max-width: 59.99rem)");
  function fit() {
    button.hidden = !narrow.matches;
    var open = !narrow.matches || button.getAttribute("aria-expanded") === "true";
    nav.classList.toggle("folded", !open);
  }
  button.addEventListener("click", function () {
    var open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    fit();
    if (open) { var first = nav.querySelector("a"); if (first) first.focus(); }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && narrow.matches && button.getAttribute("aria-expanded") === "true") {
      button.setAttribute("aria-expanded", "false");
      fit();
      button.focus();
    }
  });
  if (narrow.addEventListener) narrow.addEventListener("change", fit); else narrow.addListener(fit);
  fit();
})();
