"""How long a share link lives (pure): when its signature is re-signed, and what to tell
people about it.

SigV4 caps a presigned URL at 7 days. A short link (`L/<token>`) can live longer: its
page is rewritten with a fresh signature (and the gallery page with fresh asset URLs)
while the device is online, until `link_days` after the link was made. A device offline
when a signature runs out leaves the link dead until it is back online and re-signs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol


class Link(Protocol):
    expires: datetime  # the current signature's end
    short_key: str | None
    ends: datetime | None  # the link's end (short links); None: dies with its signature


def resign_window(expiry_s: int) -> timedelta:
    """Re-sign once less than half a signature's lifetime is left (3.5 days for 7-day
    links), so a device online every few days never lets a link lapse."""
    return timedelta(seconds=expiry_s / 2)


def resign_due(link: Link, expiry_s: int, now: datetime) -> bool:
    """A short link within its life whose signature is in the window (or past it)."""
    if link.short_key is None or link.ends is None or now >= link.ends:
        return False
    return link.expires < link.ends and link.expires - now < resign_window(expiry_s)


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def link_status(link: Link, now: datetime) -> str:
    """One line for `ghostroll sessions`: working until when, dead until online, or
    expired for good."""
    end = link.ends or link.expires
    if now >= end:
        return f"expired {_when(end)}"
    if now >= link.expires:
        return (f"dead since {_when(link.expires)} (the device was offline): works again "
                f"once it is online, until {_when(end)}")
    if link.ends is not None and link.ends > link.expires:
        return f"works until {_when(end)} (re-signed while online)"
    return f"works until {_when(end)}"


def panel_status(link: Link, now: datetime) -> str:
    """The same, short enough for the idle screen's line ("" when it is working)."""
    end = link.ends or link.expires
    if now >= end:
        return "last link expired"
    if now >= link.expires:
        return "link dead until online"
    return ""
