// Live alerts on the Main Menu. The page is complete without this script; it only keeps
// the badge and the list current while the page stays open (server-sent events).
(function () {
  "use strict";

  var section = document.querySelector("section.alerts[data-stream]");
  if (!section || !window.EventSource) {
    return;
  }
  var badge = document.getElementById("alert-count");
  var list = document.getElementById("alert-list");
  var empty = document.getElementById("alerts-empty");
  var more = document.getElementById("alerts-more");
  var announcer = document.getElementById("alerts-announcer");
  var baseTitle = document.title;

  // Alerts already on the page when it was rendered are not news to announce.
  var known = new Set(Array.prototype.map.call(
    list.querySelectorAll("li[data-alert-id]"),
    function (item) { return item.getAttribute("data-alert-id"); }
  ));

  // textContent only: a patient's name is data, never markup.
  function item(alert) {
    var entry = document.createElement("li");
    entry.setAttribute("data-alert-id", alert.id);
    var link = document.createElement("a");
    link.href = alert.href;
    link.textContent = alert.message;
    var time = document.createElement("time");
    time.dateTime = alert.created_at;
    // Written by the server in the practice's zone, the same words as the page's own.
    time.textContent = alert.shown_at;
    entry.append(link, " ", time);
    return entry;
  }

  function show(feed) {
    badge.textContent = String(feed.count);
    list.replaceChildren.apply(list, feed.items.map(item));
    empty.hidden = feed.items.length > 0;
    if (more) {
      more.hidden = feed.count <= feed.items.length;
    }
    document.title = feed.count > 0 ? "(" + feed.count + ") " + baseTitle : baseTitle;
    var fresh = feed.items.filter(function (alert) { return !known.has(alert.id); });
    if (fresh.length === 1) {
      announcer.textContent = fresh[0].message;
    } else if (fresh.length > 1) {
      announcer.textContent = fresh.length + " new secure email replies";
    }
    known = new Set(feed.items.map(function (alert) { return alert.id; }));
  }

  var source = new EventSource(section.getAttribute("data-stream"));
  source.addEventListener("alerts", function (event) {
    show(JSON.parse(event.data));
  });
})();
