// Progressive enhancement: a reference <select> gains a search box that asks the server as you type.
// Without JavaScript the plain <select> works as it is.
document.querySelectorAll("select[data-lookup]").forEach(function (select) {
  var box = document.createElement("input");
  box.type = "search";
  box.placeholder = "Type to search";
  box.setAttribute("aria-label", "Search " + (select.labels[0] ? select.labels[0].textContent.trim() : "records"));
  select.parentNode.insertBefore(box, select);
  var timer = null;
  box.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      fetch(select.dataset.lookup + "?q=" + encodeURIComponent(box.value), {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (rows) {
          var keep = select.value;
          while (select.options.length > 1) select.remove(1);
          rows.forEach(function (row) {
            var o = new Option(row.title, row.id, false, String(row.id) === keep);
            select.add(o);
          });
          if (rows.length === 1) select.value = String(rows[0].id);
        });
    }, 200);
  });
});
