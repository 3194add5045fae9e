// The bell's unread count, kept live without a reload (progressive enhancement: without JavaScript the count is the
// one the page was rendered with, and the bell still leads to the notifications page).
// Server-Sent Events from data-stream: an `unread` event carries the count whenever it changes; the browser
// reconnects by itself after a dropped connection. Where the stream cannot be opened at all (no EventSource, a proxy
// that refuses it), the count is polled from data-poll every 30 s; polling stops once the session has ended.
(function () {
  var bell = document.querySelector(".bell[data-stream]");
  if (!bell) return;
  var badge = bell.querySelector(".bell-count");
  var words = bell.querySelector(".bell-words");
  var news = document.querySelector("[data-bell-news]");
  var shown = parseInt(bell.getAttribute("data-unread"), 10) || 0;
  var POLL_MS = 30000;

  function show(count) {
    if (typeof count !== "number" || count < 0 || count === shown) return;
    var more = count > shown;
    shown = count;
    badge.textContent = count < 100 ? String(count) : "99+";
    words.textContent = count ? ", " + count + " unread" : "";
    badge.hidden = count === 0;
    bell.setAttribute("data-unread", String(count));
    // said once by screen readers, only when something new came (not when it was read elsewhere)
    if (news && more) news.textContent = count === 1 ? "1 unread notification" : count + " unread notifications";
  }

  function poll() {
    fetch(bell.getAttribute("data-poll"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        var json = (response.headers.get("content-type") || "").indexOf("application/json") === 0;
        if (!response.ok || response.redirected || !json) throw new Error("logged out");  // the login page: stop
        return response.json();
      })
      .then(function (body) { show(body.unread); window.setTimeout(poll, POLL_MS); })
      .catch(function () {});
  }

  if (!("EventSource" in window)) {
    window.setTimeout(poll, POLL_MS);
    return;
  }
  var stream = new EventSource(bell.getAttribute("data-stream"));
  stream.addEventListener("unread", function (event) {
    try { show(JSON.parse(event.data)); } catch (e) { /* not a count: ignore it */ }
  });
  stream.addEventListener("error", function () {
    // CONNECTING: the browser tries again by itself. CLOSED: it gave up (not an event stream, e.g. the login page).
    if (stream.readyState === EventSource.CLOSED) window.setTimeout(poll, 0);
  });
})();
