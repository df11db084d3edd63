"""The gallery page from the model: one self-contained index.html.

Our CSS and JS live in static/ and are inlined here, so one file works from file://,
any static host, and a private bucket (where each extra file would need its own
presigned URL). Every name and caption is escaped; the JSON for the script is escaped so
that no string can close the <script> element."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from html import escape
from importlib import resources
from urllib.parse import quote

from ghostroll.gallery.model import Gallery, GalleryItem, Progress

Resolver = Callable[[str], str]
POLL_SECONDS = 4
SIZES = "(max-width: 480px) 33vw, (max-width: 1024px) 25vw, 220px"


@cache
def _static(name: str) -> str:
    return (resources.files("ghostroll.gallery") / "static" / name).read_text("utf-8")


def local_resolver() -> Resolver:
    """Keys → paths relative to the session's index.html (each segment URL-quoted)."""
    def resolve(key: str) -> str:
        local = key if key.startswith("originals/") else f"derived/{key}"
        return "/".join(quote(part) for part in local.split("/"))
    return resolve


def script_json(data: object) -> str:
    """JSON safe inside <script>: no '<', '>' or '&' can end or alter the element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def progress_document(done: int, total: int, finished: bool,
                      now: datetime | None = None) -> dict[str, object]:
    """progress.json: what the loading and progressive pages poll."""
    return {"done": done, "total": total, "finished": finished,
            "updated": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")}


def _page(title: str, body: str, data: dict[str, object]) -> str:
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"referrer\" content=\"no-referrer\">\n"
        "<meta name=\"robots\" content=\"noindex\">\n"
        "<link rel=\"icon\" href=\"data:,\">\n"
        f"<title>{escape(title)}</title>\n<style>\n{_static('gallery.css')}</style>\n"
        f"</head>\n<body>\n{body}\n"
        f"<script type=\"application/json\" id=\"gallery-data\">{script_json(data)}</script>\n"
        f"<script>\n{_static('gallery.js')}</script>\n</body>\n</html>\n")


def _expiry(expires: datetime | None) -> str:
    if expires is None:
        return ""
    text = expires.astimezone(UTC).strftime("%-d %b %Y %H:%M UTC")
    return f'<p class="expiry">This link works until {escape(text)}.</p>'


def _banner(progress: Progress | None) -> str:
    if progress is None or progress.finished:
        return ""
    return (f'<p class="banner" role="status">Uploading: {progress.done} of {progress.total} '
            "ready. This page fills in by itself.</p>")


def _tile(index: int, item: GalleryItem, resolve: Resolver) -> str:
    name = escape(item.name)
    caption = escape(item.caption)
    label = escape(f"{item.name}{', ' + item.caption if item.caption else ''}")
    if item.kind == "video":
        poster = ""
        if item.thumb:
            poster = (f'<img src="{escape(resolve(item.thumb))}" alt="" loading="lazy" '
                      f'decoding="async" width="{item.width}" height="{item.height}">')
        inner = f'{poster}<span class="play" aria-hidden="true">▶</span>'
        if item.original:
            body = (f'<a href="{escape(resolve(item.original))}" download="{name}" '
                    f'aria-label="Download video {label}">{inner}</a>')
        else:  # not shared: the original stays on the device
            body = f'<span class="still" role="img" aria-label="Video {label}">{inner}</span>'
        return (f'<li class="tile video">{body}'
                f'<span class="cap">{name}<br>{caption}</span></li>')
    thumb, share = resolve(item.thumb or ""), resolve(item.share or "")
    srcset = f"{escape(thumb)} 512w, {escape(share)} 2048w"
    return (f'<li class="tile"><a href="{escape(share)}" data-index="{index}" '
            f'id="t-{escape(item.id)}" aria-label="Open {label}">'
            f'<img src="{escape(thumb)}" srcset="{srcset}" sizes="{SIZES}" '
            f'width="{item.width}" height="{item.height}" loading="lazy" decoding="async" '
            f'alt="{label}"></a><span class="cap">{caption or name}</span></li>')


def render_index(gallery: Gallery, resolve: Resolver, progress_url: str | None = None) -> str:
    photos = gallery.photos
    tiles = []
    photo_index = {item.id: i for i, item in enumerate(photos)}
    for item in gallery.items:
        tiles.append(_tile(photo_index.get(item.id, -1), item, resolve))
    zip_link = ""
    if gallery.zip_key:
        zip_link = (f'<a class="button" href="{escape(resolve(gallery.zip_key))}" '
                    f'download="{escape(gallery.session_id)}.zip">Download all</a>')
    count = f"{len(photos)} photo{'s' if len(photos) != 1 else ''}"
    videos = len(gallery.items) - len(photos)
    if videos:
        count += f", {videos} video{'s' if videos != 1 else ''}"
    body = (
        f'<header><h1>{escape(gallery.title)}</h1><p class="meta">{count}</p>{zip_link}'
        f"</header>\n{_banner(gallery.progress)}\n<main>\n"
        f'<ul class="grid">{"".join(tiles)}</ul>\n</main>\n'
        f"<footer>{_expiry(gallery.expires)}</footer>\n{_LIGHTBOX}")
    data = {
        "photos": [{"id": p.id, "name": p.name, "caption": p.caption,
                    "share": resolve(p.share or ""), "w": p.width, "h": p.height}
                   for p in photos],
        "progress": _progress_data(gallery.progress, progress_url),
    }
    return _page(gallery.title, body, data)


def render_loading(title: str, progress_url: str, expires: datetime | None = None) -> str:
    """The first page behind the link, before any image is up."""
    body = (f'<header><h1>{escape(title)}</h1></header>\n<main class="loading">'
            '<p class="banner" role="status">Preparing your photos… This page fills in by '
            f"itself.</p></main>\n<footer>{_expiry(expires)}</footer>")
    return _page(title, body, {"photos": [], "progress": {
        "url": progress_url, "done": 0, "finished": False, "every": POLL_SECONDS}})


def _progress_data(progress: Progress | None, url: str | None) -> dict[str, object] | None:
    if progress is None or progress.finished or not url:
        return None
    return {"url": url, "done": progress.done, "finished": False, "every": POLL_SECONDS}


_LIGHTBOX = """<dialog id="lightbox" aria-label="Photo viewer">
<figure><img id="lb-img" alt=""><figcaption id="lb-cap"></figcaption></figure>
<div class="lb-bar">
<button type="button" id="lb-prev" aria-label="Previous photo">‹</button>
<a id="lb-dl" class="button" download aria-label="Download this photo">Download</a>
<button type="button" id="lb-next" aria-label="Next photo">›</button>
<button type="button" id="lb-close" aria-label="Close">✕</button>
</div>
</dialog>"""
