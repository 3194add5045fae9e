// The page shell's progressive enhancements. Without JavaScript every page still works:
// the menu is a list that wraps under the header, and wide tables scroll inside their own box.
(function () {
  // On narrow screens the main navigation folds behind the "Menu" button.
  var button = document.querySelector(".menu-toggle");
  var nav = document.getElementById("main-nav");
  var narrow = window.matchMedia("(max-width: 59.99rem)");

  function fit() {
    if (!button || !nav) return;
    button.hidden = !narrow.matches;
    var open = !narrow.matches || button.getAttribute("aria-expanded") === "true";
    nav.classList.toggle("folded", !open);
  }

  if (button && nav) {
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
  }

  // A table wider than its box scrolls sideways; keyboard users reach it with Tab and scroll it with the arrow keys.
  // A wrapper becomes a named region (the table's caption or the heading before it); a bare table keeps its role.
  function nameOf(el) {
    var caption = el.querySelector("caption");
    if (caption) return caption.textContent.trim();
    for (var at = el; at && at !== document.body; at = at.parentElement) {
      for (var prev = at.previousElementSibling; prev; prev = prev.previousElementSibling) {
        if (/^H[1-6]$/.test(prev.tagName)) return prev.textContent.trim();
      }
    }
    return document.title;
  }

  function reachable() {
    var boxes = document.querySelectorAll("main .table-wrap, main .table-box, main .scroll, main > table, main :not(.table-wrap, .table-box, .scroll) > table");
    Array.prototype.forEach.call(boxes, function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1;
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.dataset.scrolls = "1";
        if (box.tagName !== "TABLE") {
          box.setAttribute("role", "region");
          box.setAttribute("aria-label", nameOf(box) + " (scrolls sideways)");
        }
      } else if (!scrolls && box.dataset.scrolls) {
        box.removeAttribute("tabindex");
        delete box.dataset.scrolls;
        if (box.tagName !== "TABLE") { box.removeAttribute("role"); box.removeAttribute("aria-label"); }
      }
    });
  }

  function layout() { fit(); reachable(); }
  if (narrow.addEventListener) narrow.addEventListener("change", layout); else narrow.addListener(layout);
  window.addEventListener("resize", reachable);
  layout();
})();
