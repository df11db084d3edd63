"""What the gallery shows, as data. Pure: no I/O, no URLs.

Asset keys are logical ("thumbs/<id>.jpg", "share/<id>.jpg", "share.zip",
"originals/DCIM/..."); a resolver turns them into URLs (relative paths in the session
folder, or presigned URLs in the bucket)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class GalleryItem:
    id: str  # url-safe, unique in the gallery; also the deep link #p=<id>
    name: str  # the original file name, shown as text
    kind: str  # "photo" | "video"
    thumb: str | None
    share: str | None  # photos: the share JPEG; videos: the copy without metadata
    original: str | None = None  # videos: the original for download
    width: int = 0  # share image (or poster) size
    height: int = 0
    captured: datetime | None = None
    camera: str = ""
    size_bytes: int = 0
    duration_s: float | None = None
    playable: bool = False  # a shared video browsers play inline (H.264 in MP4/MOV)
    captured_from: str = ""  # PhotoMeta.captured_source: exif-original, file-mtime...
    motion: str | None = None  # photos: a Live Photo's (or motion photo's) playable clip

    @property
    def caption(self) -> str:
        parts = []
        if self.captured is not None:
            parts.append(f"{self.captured:%-d %b %Y %H:%M}")
        if self.camera:
            parts.append(self.camera)
        if self.kind == "video":
            parts.append(video_label(self.duration_s, self.size_bytes))
        return " · ".join(parts)


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    finished: bool


@dataclass(frozen=True)
class Gallery:
    title: str
    session_id: str
    items: tuple[GalleryItem, ...]
    zip_key: str | None = None
    expires: datetime | None = None
    progress: Progress | None = None
    empty_note: str | None = None  # why nothing is shown (e.g. RAWs without previews)

    @property
    def photos(self) -> tuple[GalleryItem, ...]:
        return tuple(i for i in self.items if i.kind == "photo" and i.share)

    @property
    def videos(self) -> tuple[GalleryItem, ...]:
        return tuple(i for i in self.items if i.kind == "video")

    @property
    def viewable(self) -> tuple[GalleryItem, ...]:
        """What the lightbox steps through: photos and videos that play inline."""
        return tuple(i for i in self.items if i.share and (i.kind == "photo" or i.playable))


def capture_dates(items: Iterable[GalleryItem]) -> list[datetime]:
    """The capture times that name an album: those the camera recorded in the file, or
    the files' times when no file holds one."""
    dated = [i for i in items if i.captured is not None]
    recorded = [i for i in dated if i.captured_from not in ("file-mtime", "")]
    return [i.captured for i in (recorded or dated) if i.captured is not None]


def sort_items(items: Iterable[GalleryItem]) -> tuple[GalleryItem, ...]:
    """By capture time (the camera's wall clock), then name; undated last."""
    def key(item: GalleryItem) -> tuple[int, datetime, str]:
        if item.captured is None:
            return (1, datetime.min, item.name)
        return (0, item.captured.replace(tzinfo=None), item.name)

    return tuple(sorted(items, key=key))


def video_label(duration_s: float | None, size_bytes: int) -> str:
    parts = []
    if duration_s:
        minutes, seconds = divmod(round(duration_s), 60)
        parts.append(f"{minutes}:{seconds:02d}")
    if size_bytes:
        parts.append(f"{size_bytes / 1e6:.1f} MB")
    return "video " + " · ".join(parts) if parts else "video"


def items_to_json(items: Iterable[GalleryItem]) -> list[dict[str, Any]]:
    """For derived/gallery.json, so publishing can rebuild the page later."""
    names = [f.name for f in fields(GalleryItem)]  # flat: no deep copy (asdict) needed
    rows = []
    for item in items:
        row = {name: getattr(item, name) for name in names}
        row["captured"] = item.captured.isoformat() if item.captured else None
        rows.append(row)
    return rows


def items_from_json(rows: Iterable[dict[str, Any]]) -> tuple[GalleryItem, ...]:
    names = {f.name for f in fields(GalleryItem)}
    items = []
    for row in rows:
        values = {k: v for k, v in row.items() if k in names}
        if values.get("captured"):
            values["captured"] = datetime.fromisoformat(values["captured"])
        items.append(GalleryItem(**values))
    return tuple(items)
