// Progressive enhancement of the pipeline board: drag a card to another column.
// The drop fills in the card's own "Move to" form and submits it, so a move with scripts is exactly
// the move without them (same form, CSRF token and row version; the server refuses a stale one).
(function () {
  var board = document.querySelector(".board");
  if (!board || !("draggable" in document.createElement("li"))) return;
  var dragged = null;
  document.querySelectorAll("[data-drag-hint]").forEach(function (hint) { hint.hidden = false; });
  board.querySelectorAll("[data-card]").forEach(function (card) {
    var form = card.querySelector("form.move");
    if (!form) return;
    card.draggable = true;
    card.addEventListener("dragstart", function (event) {
      dragged = card;
      card.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", card.id);
    });
    card.addEventListener("dragend", function () {
      card.classList.remove("dragging");
      dragged = null;
      board.querySelectorAll(".drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
    });
  });
  board.querySelectorAll("[data-stage]").forEach(function (column) {
    function other() { return dragged && dragged.closest("[data-stage]") !== column; }
    column.addEventListener("dragover", function (event) {
      if (!other()) return;
      event.preventDefault();  // allows the drop
      event.dataTransfer.dropEffect = "move";
      column.classList.add("drop-target");
    });
    column.addEventListener("dragleave", function (event) {
      if (!column.contains(event.relatedTarget)) column.classList.remove("drop-target");
    });
    column.addEventListener("drop", function (event) {
      event.preventDefault();
      column.classList.remove("drop-target");
      var card = dragged || document.getElementById(event.dataTransfer.getData("text/plain"));
      if (!card || card.closest("[data-stage]") === column) return;
      var form = card.querySelector("form.move");
      form.elements.stage.value = column.dataset.stage;
      column.querySelector(".cards").appendChild(card);  // shown where it goes while the server moves it
      card.classList.add("moving");
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    });
  });
})();
