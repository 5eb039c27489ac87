// The dashboard's live alarm. Listens to the server's live feed (GET events, server-sent events):
// a new unacknowledged escalation shows a banner and sounds a tone every few seconds until the
// nurse presses "Silence"; the tab title carries the number waiting; on the queue page the list
// is refreshed in place. Silenced references are kept for this browser tab only.
(function () {
  "use strict";
  var body = document.body;
  var feed = body.getAttribute("data-events");
  if (!feed || !window.EventSource) { return; }
  var banner = document.getElementById("alarm");
  var bannerText = document.getElementById("alarm-text");
  var silenceButton = document.getElementById("alarm-silence");
  var baseTitle = document.title.replace(/^\(\d+\) /, "");
  var silenced = new Set(JSON.parse(sessionStorage.getItem("hsg-silenced") || "[]"));
  var lastStamp = null;
  var audio = null;
  var beeping = null;

  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.2;
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.4);
    } catch (e) { /* no audio device: the banner and the title still show */ }
  }

  function sound(on) {
    body.setAttribute("data-alarm", on ? "sounding" : "silent");
    if (on && !beeping) { beep(); beeping = setInterval(beep, 3000); }
    if (!on && beeping) { clearInterval(beeping); beeping = null; }
  }

  function refreshQueue() {
    if (body.getAttribute("data-page") !== "queue") { return; }
    fetch(body.getAttribute("data-queue") + "?auto=1", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("queue-live");
        var here = document.getElementById("queue-live");
        if (fresh && here) { here.replaceWith(fresh); }
      })
      .catch(function () { /* the next state refreshes again */ });
  }

  function show(state) {
    document.title = (state.waiting ? "(" + state.waiting + ") " : "") + baseTitle;
    // silenced per reference AND level: an escalation raised to emergency sounds again
    var loud = state.items.filter(function (e) { return !silenced.has(e.id + ":" + e.level); });
    if (loud.length) {
      bannerText.textContent = loud.length + " escalation" + (loud.length === 1 ? "" : "s") +
        " waiting for acknowledgement: " + loud.map(function (e) {
          return e.id + (e.level === "emergency" ? " (EMERGENCY)" : " (urgent)");
        }).join(", ");
      banner.hidden = false;
      banner.className = "alarm" + (loud.some(function (e) { return e.level === "emergency"; }) ? " alarm-emergency" : "");
      banner.setAttribute("data-ids", loud.map(function (e) { return e.id + ":" + e.level; }).join(" "));
    } else {
      banner.hidden = true;
    }
    sound(loud.length > 0);
    if (state.stamp !== lastStamp) {
      if (lastStamp !== null) { refreshQueue(); }
      lastStamp = state.stamp;
    }
  }

  silenceButton.addEventListener("click", function () {
    (banner.getAttribute("data-ids") || "").split(" ").forEach(function (id) { if (id) { silenced.add(id); } });
    sessionStorage.setItem("hsg-silenced", JSON.stringify(Array.from(silenced).slice(-500)));
    banner.hidden = true;
    sound(false);
  });

  var source = new EventSource(feed);
  source.onmessage = function (event) { show(JSON.parse(event.data)); };
  source.addEventListener("ended", function () {
    source.close();
    window.location.assign(body.getAttribute("data-login") + "?ended=1");
  });
}());
