"""The gallery page from the model: one self-contained index.html.

Our CSS and JS live in static/ and are inlined here, so one file works from file://,
any static host, and a private bucket (where each extra file would need its own
presigned URL). Every name and caption is escaped; the JSON for the script is escaped so
that no string can close the <script> element."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from html import escape
from importlib import resources
from urllib.parse import quote

from ghostroll.gallery.model import Gallery, GalleryItem, Progress, capture_dates
from ghostroll.gallery.title import summary

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


@dataclass(frozen=True)
class Preview:
    """What a messenger shows for the link (Open Graph)."""
    title: str
    description: str
    image: str | None = None  # a (presigned) thumbnail URL


def og_tags(preview: Preview) -> str:
    tags = [("og:type", "website"), ("og:title", preview.title),
            ("og:description", preview.description)]
    if preview.image:
        tags.append(("og:image", preview.image))
    return "".join(f'<meta property="{name}" content="{escape(value)}">\n'
                   for name, value in tags)


def gallery_preview(gallery: Gallery, resolve: Resolver) -> Preview:
    thumb = next((i.thumb for i in gallery.items if i.thumb), None)
    return Preview(gallery.title,
                   summary(len(gallery.photos), len(gallery.videos),
                           capture_dates(gallery.items)),
                   resolve(thumb) if thumb else None)


def _page(title: str, body: str, data: dict[str, object],
          preview: Preview | None = None) -> str:
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"referrer\" content=\"no-referrer\">\n"
        "<meta name=\"robots\" content=\"noindex\">\n"
        "<link rel=\"icon\" href=\"data:,\">\n"
        f"{og_tags(preview) if preview else ''}"
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


def _video_tile(index: int, item: GalleryItem, resolve: Resolver) -> str:
    """Plays in the lightbox when shared as H.264 in MP4/MOV (and the browser agrees:
    the script turns the tile into a download otherwise); other shared clips are a
    download; a clip not shared is its poster alone."""
    name = escape(item.name)
    caption = escape(item.caption)
    label = escape(f"{item.name}{', ' + item.caption if item.caption else ''}")
    poster = ""
    if item.thumb:
        poster = (f'<img src="{escape(resolve(item.thumb))}" alt="" loading="lazy" '
                  f'decoding="async" width="{item.width}" height="{item.height}">')
    download = item.share or item.original
    symbol = "▶" if item.playable else "⬇" if download else "▶"
    inner = f'{poster}<span class="play" aria-hidden="true">{symbol}</span>'
    if item.share and item.playable:
        body = (f'<a href="{escape(resolve(item.share))}" data-index="{index}" '
                f'id="t-{escape(item.id)}" download="{escape(_download_name(item))}" '
                f'aria-label="Play video {label}">{inner}</a>')
    elif download:
        body = (f'<a href="{escape(resolve(download))}" '
                f'download="{escape(_download_name(item))}" '
                f'aria-label="Download video {label}">{inner}</a>')
    else:  # not shared: the original stays on the device
        body = f'<span class="still" role="img" aria-label="Video {label}">{inner}</span>'
    return (f'<li class="tile video">{body}'
            f'<span class="cap">{name}<br>{caption}</span></li>')


def _download_name(item: GalleryItem) -> str:
    """The card's name, with the extension of what is downloaded."""
    key = item.share or item.original or ""
    ext = key.rsplit(".", 1)[-1] if "." in key else ""
    stem = item.name.rsplit(".", 1)[0] if "." in item.name else item.name
    return f"{stem}.{ext}" if ext else item.name


def _tile(index: int, item: GalleryItem, resolve: Resolver) -> str:
    if item.kind == "video":
        return _video_tile(index, item, resolve)
    name = escape(item.name)
    caption = escape(item.caption)
    label = escape(f"{item.name}{', ' + item.caption if item.caption else ''}")
    thumb, share = resolve(item.thumb or ""), resolve(item.share or "")
    srcset = f"{escape(thumb)} 512w, {escape(share)} 2048w"
    live = '<span class="live" aria-hidden="true">LIVE</span>' if item.motion else ""
    return (f'<li class="tile"><a href="{escape(share)}" data-index="{index}" '
            f'id="t-{escape(item.id)}" aria-label="Open {label}">'
            f'<img src="{escape(thumb)}" srcset="{srcset}" sizes="{SIZES}" '
            f'width="{item.width}" height="{item.height}" loading="lazy" decoding="async" '
            f'alt="{label}">{live}</a><span class="cap">{caption or name}</span></li>')


def _empty(gallery: Gallery) -> str:
    """Why a gallery shows nothing, from the processing notes (e.g. RAWs kept without
    a usable preview)."""
    if gallery.items or gallery.progress is not None:
        return ""
    kept = escape(gallery.empty_note or "Nothing on this card could be shown.")
    return f'<p class="banner empty" role="status">{kept}</p>'


def _viewer_entry(item: GalleryItem, resolve: Resolver) -> dict[str, object]:
    entry: dict[str, object] = {"id": item.id, "name": item.name, "caption": item.caption,
                                "share": resolve(item.share or ""), "w": item.width,
                                "h": item.height, "dl": _download_name(item)}
    if item.kind == "video":
        entry["video"] = entry["share"]
        entry["poster"] = resolve(item.thumb) if item.thumb else ""
    if item.motion:
        entry["motion"] = resolve(item.motion)
    return entry


def render_index(gallery: Gallery, resolve: Resolver, progress_url: str | None = None) -> str:
    viewable = gallery.viewable
    tiles = []
    viewer_index = {item.id: i for i, item in enumerate(viewable)}
    for item in gallery.items:
        tiles.append(_tile(viewer_index.get(item.id, -1), item, resolve))
    zip_link = ""
    if gallery.zip_key:
        zip_link = (f'<a class="button" href="{escape(resolve(gallery.zip_key))}" '
                    f'download="{escape(gallery.session_id)}.zip">Download all</a>')
    preview = gallery_preview(gallery, resolve)
    body = (
        f'<header><h1>{escape(gallery.title)}</h1><p class="meta">'
        f"{escape(preview.description)}</p>{zip_link}"
        f"</header>\n{_banner(gallery.progress)}{_empty(gallery)}\n<main>\n"
        f'<ul class="grid">{"".join(tiles)}</ul>\n</main>\n'
        f"<footer>{_expiry(gallery.expires)}</footer>\n{_LIGHTBOX}")
    data = {
        "photos": [_viewer_entry(p, resolve) for p in viewable],
        "progress": _progress_data(gallery.progress, progress_url),
    }
    return _page(gallery.title, body, data, preview)


def render_loading(title: str, progress_url: str, expires: datetime | None = None,
                   total: int = 0, preview: Preview | None = None) -> str:
    """The first page behind the link, before any image is up; the script keeps its
    count of what is ready current."""
    ready = (f' <span id="ready">0 of {total} ready.</span>' if total else "")
    body = (f'<header><h1>{escape(title)}</h1></header>\n<main class="loading">'
            f'<p class="banner" role="status">Preparing your photos…{ready} This page fills '
            f"in by itself.</p></main>\n<footer>{_expiry(expires)}</footer>")
    return _page(title, body, {"photos": [], "progress": {
        "url": progress_url, "done": 0, "total": total, "finished": False,
        "every": POLL_SECONDS}}, preview)


def _progress_data(progress: Progress | None, url: str | None) -> dict[str, object] | None:
    if progress is None or progress.finished or not url:
        return None
    return {"url": url, "done": progress.done, "finished": False, "every": POLL_SECONDS}


_LIGHTBOX = """<dialog id="lightbox" aria-label="Photo viewer">
<figure><img id="lb-img" alt="">
<video id="lb-video" controls playsinline preload="metadata" hidden></video>
<figcaption id="lb-cap"></figcaption></figure>
<div class="lb-bar">
<button type="button" id="lb-prev" aria-label="Previous photo">‹</button>
<button type="button" id="lb-live" aria-label="Play the Live Photo" hidden>▶ Live</button>
<a id="lb-dl" class="button" download aria-label="Download this photo">Download</a>
<button type="button" id="lb-next" aria-label="Next photo">›</button>
<button type="button" id="lb-close" aria-label="Close">✕</button>
</div>
</dialog>"""
