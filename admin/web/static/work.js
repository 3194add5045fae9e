// The team view: a box in the table's head ticks (or unticks) every task on the page, and the button says how many are
// ticked. Without this script each task is ticked on its own; the form works the same.
(function () {
  "use strict";
  function setUp(form) {
    var head = form.querySelector("th.pick");
    var boxes = Array.prototype.slice.call(form.querySelectorAll("td.pick input[type=checkbox]"));
    var button = form.querySelector(".bulk-bar button[type=submit]");
    if (!head || !boxes.length || !button) return;
    var all = document.createElement("input");
    all.type = "checkbox";
    all.setAttribute("aria-label", "Tick every task on this page");
    head.textContent = "";
    head.appendChild(all);
    var label = button.textContent;
    function update() {
      var ticked = boxes.filter(function (b) { return b.checked; }).length;
      all.checked = ticked === boxes.length;
      all.indeterminate = ticked > 0 && ticked < boxes.length;
      button.textContent = ticked ? label + " " + ticked + (ticked === 1 ? " task" : " tasks") : label;
    }
    all.addEventListener("change", function () {
      boxes.forEach(function (b) { b.checked = all.checked; });
      update();
    });
    boxes.forEach(function (b) { b.addEventListener("change", update); });
    update();
  }
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("form.bulk"), setUp);
  });
})();
