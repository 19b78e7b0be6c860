// liftoff's status page: refresh the live part of the page every few
// seconds. The page works without this file; it only saves a reload. It
// leaves the page alone while it is hidden, while a <details> is open and
// while something in it has the focus, so that forms keep working.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch || !window.DOMParser) {
    return;
  }
  var every = (Number(live.getAttribute("data-refresh")) || 5) * 1000;

  function busy() {
    var a = document.activeElement;
    return document.hidden || live.querySelector("details[open]") !== null ||
      (a !== null && a !== document.body && live.contains(a));
  }

  function tick() {
    if (busy()) {
      setTimeout(tick, every);
      return;
    }
    fetch(location.href, { credentials: "same-origin", headers: { "X-Liftoff-Refresh": "1" } })
      .then(function (r) {
        if (r.redirected || r.status === 401 || r.status === 403) {
          location.reload(); // the session ended: the page says what to do
          return null;
        }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (!html || busy()) {
          return;
        }
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (next) {
          live.replaceWith(next);
          live = next;
        }
      })
      .catch(function () {})
      .then(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
})();
