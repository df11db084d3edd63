"""An album's name and its one-line summary, from what the camera recorded. Pure.

Dates are the camera's own wall-clock dates (its local time; an OffsetTimeOriginal is
kept as written, never converted). A card label names the album only when a person
chose it: camera and OS defaults (NO NAME, EOS_DIGITAL, auto-import…) say nothing."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime

DEFAULT_LABELS = frozenset({
    "", "no name", "no_name", "noname", "untitled", "unnamed", "eos_digital", "canon_dc",
    "canon", "nikon", "sony", "lumix", "panasonic", "fujifilm", "olympus", "om system",
    "pentax", "ricoh", "leica", "gopro", "dji", "insta360", "kodak", "camera", "dcim",
    "sd", "sdcard", "sd card", "sdxc", "sdhc", "usb", "disk", "removable", "auto-import",
    "photos", "card", "memory card", "boot", "new volume", "volume",
})
# e.g. "NIKON D750", "EOS_R5", "ILCE-7M3", "X-T4": a model the camera writes at format
_MODEL_LABEL = re.compile(r"^(nikon\s?\w+|eos[\s_]\w+|ilce-\w+|dsc-\w+|x-\w+|gfx\w*|"
                          r"hero\d+\w*|dmc-\w+|dc-\w+|e-m\d\w*|om-\d\w*)$", re.IGNORECASE)


def chosen_label(label: str | None) -> str | None:
    """The card label when a person chose it, else None."""
    text = (label or "").strip()
    if text.lower() in DEFAULT_LABELS or _MODEL_LABEL.match(text):
        return None
    return text


def date_range(days: Iterable[date], with_year: bool = True) -> str:
    """`12 Jun 2024`, `12–14 Jun 2024`, `30 May – 2 Jun 2024`, `30 Dec 2023 – 2 Jan 2024`;
    without the year (`12–14 Jun`) unless the range spans two years. "" for no dates."""
    ordered = sorted(set(days))
    if not ordered:
        return ""
    first, last = ordered[0], ordered[-1]
    year = f" {last.year}" if with_year else ""
    if first == last:
        return f"{first.day} {first:%b}{year}"
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{last.day} {last:%b}{year}"
    if first.year == last.year:
        return f"{first.day} {first:%b} – {last.day} {last:%b}{year}"
    return f"{first.day} {first:%b} {first.year} – {last.day} {last:%b} {last.year}"


def album_title(label: str | None, captured: Iterable[datetime | None],
                fallback: date) -> str:
    """`Wedding · 12–14 Jun 2024`, `12–14 Jun 2024`, or the day the card was read when no
    file has a date."""
    days = date_range(c.date() for c in captured if c is not None)
    name = chosen_label(label)
    when = days or f"{fallback.day} {fallback:%b %Y}"
    return f"{name} · {when}" if name else when


def summary(photos: int, videos: int, captured: Iterable[datetime | None]) -> str:
    """`23 photos · 2 videos · 12–14 Jun`: the link preview's description."""
    parts = [f"{photos} photo{'s' if photos != 1 else ''}"]
    if videos:
        parts.append(f"{videos} video{'s' if videos != 1 else ''}")
    days = date_range((c.date() for c in captured if c is not None), with_year=False)
    if days:
        parts.append(days)
    return " · ".join(parts)
