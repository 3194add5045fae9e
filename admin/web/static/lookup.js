// Progressive enhancement: a <select data-lookup> gains a search box that asks the server as you type.
// `data-scope` names other inputs of the form whose values narrow what it offers (an opportunity's contact:
// the people of its company); when one of them changes, the list follows it. Without JavaScript the plain
// <select> works as it is, with the options the server chose for the page.
(function () {
  function address(select, typed) {
    var url = new URL(select.dataset.lookup, window.location.href);
    url.searchParams.set("q", typed);
    (select.dataset.scope || "").split(" ").filter(Boolean).forEach(function (name) {
      var input = select.form && select.form.elements[name];
      if (input && input.value) url.searchParams.set(name, input.value);
    });
    return url;
  }

  function refresh(select, typed, status, pickSingle) {
    return fetch(address(select, typed), {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (rows) {
        if (!rows) return;
        var before = select.value;
        while (select.options.length > 1) select.remove(1);
        rows.forEach(function (row) {
          select.add(new Option(row.title, row.id, false, String(row.id) === before));
        });
        if (pickSingle && rows.length === 1) select.value = String(rows[0].id);
        status.textContent = rows.length === 1 ? "1 match" : rows.length + " matches";
        if (select.value !== before) select.dispatchEvent(new Event("change", {bubbles: true}));
      });
  }

  document.querySelectorAll("select[data-lookup]").forEach(function (select) {
    var box = document.createElement("input");
    box.type = "search";
    box.placeholder = "Type to search";
    box.className = "lookup";
    box.setAttribute("aria-label", "Search " + (select.labels[0] ? select.labels[0].textContent.replace("*", "").trim() : "records"));
    var status = document.createElement("span");
    status.className = "help";
    status.setAttribute("aria-live", "polite");
    select.parentNode.insertBefore(box, select);
    select.parentNode.insertBefore(status, select.nextSibling);
    var timer = null;
    box.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { refresh(select, box.value, status, true); }, 200);
    });
    (select.dataset.scope || "").split(" ").filter(Boolean).forEach(function (name) {
      var input = select.form && select.form.elements[name];
      if (input && input.addEventListener) {
        input.addEventListener("change", function () { box.value = ""; refresh(select, "", status, false); });
      }
    });
  });
})();
