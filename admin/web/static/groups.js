// Progressive enhancement: a group's section (the fields for healthcare companies, ...) appears and disappears
// while the fields its condition reads change, by asking the server which groups hold for the values typed so
// far (`GET /records/ENTITY/groups?field=value...`). A hidden section is disabled, so its inputs are not sent.
// Without JavaScript the section appears when the page is saved or shown again.
document.querySelectorAll("form[data-groups]").forEach(function (form) {
  var sections = form.querySelectorAll("fieldset[data-group]");
  var shown = form.elements["groups"];
  if (!sections.length || !shown) return;
  var asked = 0;

  function ask() {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, name) {
      if (typeof value === "string" && value.length <= 200 && ["csrf_token", "row_version", "groups"].indexOf(name) < 0) {
        params.append(name, value);
      }
    });
    var mine = ++asked;
    fetch(form.dataset.groups + "?" + params.toString(), {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (answer) {
        if (!answer || mine !== asked) return;  // a later question's answer wins
        sections.forEach(function (section) {
          var on = answer.holding.indexOf(section.dataset.group) >= 0;
          section.hidden = !on;
          section.disabled = !on;
        });
        shown.value = answer.holding.join(" ");
      });
  }

  form.addEventListener("change", function (event) {
    if (!event.target.closest("fieldset[data-group]")) ask();  // a group's own fields do not decide groups
  });
});
