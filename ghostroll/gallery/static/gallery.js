"use strict";
(function () {
  var data = JSON.parse(document.getElementById("gallery-data").textContent);
  var box = document.getElementById("lightbox");
  var current = -1;
  // Videos play inline only where the browser says it can (H.264 in MP4); elsewhere
  // their tiles stay downloads.
  var probe = document.createElement("video");
  var canPlay = !!(probe.canPlayType && probe.canPlayType('video/mp4; codecs="avc1.42E01E"'));
  var photos = [], remap = {};
  (data.photos || []).forEach(function (p, i) {
    if (p.video && !canPlay) return;
    remap[i] = photos.length;
    photos.push(p);
  });
  var vid = document.getElementById("lb-video");
  var live = document.getElementById("lb-live");
  if (live) {
    live.onclick = function () {  // a Live Photo: its clip over the still, then back
      var p = photos[current];
      document.getElementById("lb-img").hidden = true;
      vid.hidden = false;
      vid.poster = p.share;
      vid.src = p.motion;
      vid.play();
    };
    vid.addEventListener("ended", function () {
      var p = photos[current];
      if (p && !p.video) { stopVideo(); document.getElementById("lb-img").hidden = false; }
    });
  }

  function stopVideo() {
    if (!vid || vid.hidden) return;
    vid.pause();
    vid.removeAttribute("src");
    vid.load();
    vid.hidden = true;
  }

  function show(i, push) {
    if (!box || !photos.length) return;
    current = (i + photos.length) % photos.length;
    var p = photos[current];
    var img = document.getElementById("lb-img");
    if (p.video) {
      img.hidden = true;
      img.removeAttribute("src");
      vid.hidden = false;
      vid.poster = p.poster || "";
      vid.src = p.video;
      vid.setAttribute("aria-label", p.name);
    } else {
      stopVideo();
      img.hidden = false;
      img.src = p.share;
      img.alt = p.name;
    }
    document.getElementById("lb-cap").textContent = p.caption ? p.name + " · " + p.caption : p.name;
    live.hidden = !(p.motion && canPlay);
    var dl = document.getElementById("lb-dl");
    dl.href = p.share;
    dl.setAttribute("download", p.dl || p.name);
    if (!box.open) box.showModal();
    if (push !== false) history.replaceState(null, "", "#p=" + encodeURIComponent(p.id));
    [current - 1, current + 1].forEach(function (n) {  // preload neighbours
      var q = photos[(n + photos.length) % photos.length];
      if (q && !q.video) { var pre = new Image(); pre.src = q.share; }
    });
  }

  function close() {
    if (box && box.open) box.close();
  }

  if (box) {
    box.addEventListener("close", function () {
      stopVideo();
      history.replaceState(null, "", location.pathname + location.search);
      var tile = photos[current] && document.getElementById("t-" + photos[current].id);
      if (tile) tile.focus();
    });
    document.getElementById("lb-prev").onclick = function () { show(current - 1); };
    document.getElementById("lb-next").onclick = function () { show(current + 1); };
    document.getElementById("lb-close").onclick = close;
    box.addEventListener("click", function (e) { if (e.target === box) close(); });
    document.addEventListener("keydown", function (e) {
      if (!box.open) return;
      if (e.key === "ArrowRight") { show(current + 1); e.preventDefault(); }
      if (e.key === "ArrowLeft") { show(current - 1); e.preventDefault(); }
    });
    var startX = null;
    box.addEventListener("touchstart", function (e) {
      startX = e.touches.length === 1 ? e.touches[0].clientX : null;
    }, { passive: true });
    box.addEventListener("touchend", function (e) {
      if (startX === null || !e.changedTouches.length) return;
      var dx = e.changedTouches[0].clientX - startX;
      if (Math.abs(dx) > 50) show(dx < 0 ? current + 1 : current - 1);
      startX = null;
    });
  }

  document.querySelectorAll("a[data-index]").forEach(function (a) {
    var i = Number(a.getAttribute("data-index"));
    if (i < 0) return;
    if (!(i in remap)) {  // a video this browser cannot play: a download tile
      a.removeAttribute("data-index");
      var mark = a.querySelector(".play");
      if (mark) mark.textContent = "⬇";
      a.setAttribute("aria-label", a.getAttribute("aria-label").replace(/^Play/, "Download"));
      return;
    }
    a.addEventListener("click", function (e) { e.preventDefault(); show(remap[i]); });
  });

  function fromHash() {
    var m = /^#p=(.+)$/.exec(location.hash);
    if (!m) return;
    var id = decodeURIComponent(m[1]);
    for (var i = 0; i < photos.length; i++) {
      if (photos[i].id === id) { show(i, false); return; }
    }
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();

  var progress = data.progress;
  if (progress && progress.url) {
    var poll = function () {
      fetch(progress.url, { cache: "no-store" }).then(function (r) {
        return r.ok ? r.json() : null;
      }).then(function (p) {
        var ready = document.getElementById("ready");
        if (ready && p && p.total) ready.textContent = p.done + " of " + p.total + " ready.";
        if (p && (p.finished || p.done !== progress.done)) {
          location.reload();
        } else {
          setTimeout(poll, progress.every * 1000);
        }
      }).catch(function () { setTimeout(poll, progress.every * 1000); });
    };
    setTimeout(poll, progress.every * 1000);
  }
})();
