// Progressive enhancement of the structured editors: only the options that mean something for the chosen kind of
// value are shown, and the new group's inputs only when a new group is chosen. Without scripts everything shows.
(function () {
  function sync(form) {
    form.querySelectorAll("[data-types]").forEach(function (el) {
      var row = el.closest(".item") || form;  // a row of the form builder, or the field editor
      var type = row.querySelector('select[name$="type"]');
      if (type) { el.hidden = el.getAttribute("data-types").split(" ").indexOf(type.value) < 0; }
    });
    var scope = form.querySelector('select[name="scope"]');
    if (scope) {
      form.querySelectorAll("[data-scope]").forEach(function (el) {
        var wanted = el.getAttribute("data-scope");
        el.hidden = wanted === "new-group" ? scope.value !== "new-group" : scope.value !== wanted;
      });
    }
    form.querySelectorAll(".no-script").forEach(function (el) { el.hidden = true; });
  }
  document.querySelectorAll("form.editor-form").forEach(function (form) {
    sync(form);
    form.addEventListener("change", function () { sync(form); });
  });
})();
