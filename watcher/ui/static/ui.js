// watcher status page: live regions, the "act as" bar, the silence preview. Our own, no build step.
// Served from 'self' under a CSP without inline script; everything shown is set as text, never as HTML
// built here (swapped regions come from the server's own autoescaped templates).
(function () {
  "use strict";
  var state = document.getElementById("live-state");
  function say(text) { if (state) state.textContent = text; }

  // Live: the server says "changed" on /live; fetch this page again and swap its [data-live] regions,
  // except one the user is typing in. At most one refresh in flight, and one a second.
  var busy = false, again = false, last = 0;
  function refresh() {
    if (busy) { again = true; return; }
    var wait = Math.max(0, 1000 - (Date.now() - last));
    busy = true;
    setTimeout(function () {
      fetch(location.href, { headers: { "X-Live": "1" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) return;
          var fresh = new DOMParser().parseFromString(html, "text/html");
          document.querySelectorAll("[data-live][id]").forEach(function (old) {
            var neu = fresh.getElementById(old.id);
            if (neu && !old.contains(document.activeElement)) old.replaceWith(document.importNode(neu, true));
          });
          say("live · updated " + new Date().toLocaleTimeString());
          document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
        })
        .catch(function () { say("live · refresh failed"); })
        .finally(function () { busy = false; last = Date.now(); if (again) { again = false; refresh(); } });
    }, wait);
  }
  if (window.EventSource) {
    // "since": the view's version this page was rendered from, so a change in between is not missed.
    var source = new EventSource("/live?since=" + encodeURIComponent(document.body.dataset.version || ""));
    source.addEventListener("open", function () { say("live"); });
    source.addEventListener("changed", refresh);
    source.addEventListener("error", function () { say("live · reconnecting"); });
  }

  // The "act as" bar: its token and name go into the form being submitted (they are never stored).
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.hasAttribute && form.hasAttribute("data-nosubmit")) { e.preventDefault(); return; }
    if (!form.hasAttribute || !form.hasAttribute("data-act")) return;
    var token = document.getElementById("act-token"), by = document.getElementById("act-by");
    if (form.elements.token && token) form.elements.token.value = token.value;
    if (form.elements.by && by) form.elements.by.value = by.value;
  }, true);

  // Silence preview: how many alerts of the last 24 h the match would mute, as you type.
  var match = document.getElementById("match"), preview = document.getElementById("preview"), timer = null;
  function ask() {
    var text = match.value.trim();
    if (!text) { preview.textContent = "type a match to see how many alerts of the last 24 h it would mute"; return; }
    fetch("/silences/preview?match=" + encodeURIComponent(text), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        if (match.value.trim() !== text) return;
        preview.textContent = j.error ? "not a valid match: " + j.error
          : "would match " + j.count + " alert" + (j.count === 1 ? "" : "s") + " of the last 24 h";
        preview.dataset.count = j.error ? "" : String(j.count);
      });
  }
  if (match && preview) {
    match.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(ask, 250); });
    if (match.value) ask();
  }
})();
