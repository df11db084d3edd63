"use strict";
(function () {
  var data = JSON.parse(document.getElementById("gallery-data").textContent);
  var photos = data.photos || [];
  var box = document.getElementById("lightbox");
  var current = -1;

  function show(i, push) {
    if (!box || !photos.length) return;
    current = (i + photos.length) % photos.length;
    var p = photos[current];
    var img = document.getElementById("lb-img");
    img.src = p.share;
    img.alt = p.name;
    document.getElementById("lb-cap").textContent = p.caption ? p.name + " · " + p.caption : p.name;
    var dl = document.getElementById("lb-dl");
    dl.href = p.share;
    dl.setAttribute("download", p.name.replace(/\.[^.]*$/, "") + ".jpg");
    if (!box.open) box.showModal();
    if (push !== false) history.replaceState(null, "", "#p=" + encodeURIComponent(p.id));
    [current - 1, current + 1].forEach(function (n) {  // preload neighbours
      var q = photos[(n + photos.length) % photos.length];
      if (q) { var pre = new Image(); pre.src = q.share; }
    });
  }

  function close() {
    if (box && box.open) box.close();
  }

  if (box) {
    box.addEventListener("close", function () {
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
    a.addEventListener("click", function (e) { e.preventDefault(); show(i); });
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
