"""A session's share link as saved in `derived/link.json`: read without boto3, so a run
with nothing new can tell whether a link is due to be re-signed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from ghostroll.publish.lifetime import resign_due
from ghostroll.storage import db as dbm
from ghostroll.storage.session import SessionLayout


@dataclass(frozen=True)
class ShareLink:
    url: str  # what people get (QR, share.txt): the short link, or the presigned index
    index_url: str  # presigned URL of the session's index.html
    expires: datetime
    short_key: str | None = None  # L/<token>, when a short link is used
    # When the link dies for good: a short link is re-signed until then (link_days after
    # it was first made); a presigned link dies with its signature.
    ends: datetime | None = None


def read_link(layout: SessionLayout) -> ShareLink | None:
    """The session's saved link, whatever its age; None when there is none."""
    try:
        data = json.loads((layout.derived / "link.json").read_text(encoding="utf-8"))
        ends = data.get("ends")
        return ShareLink(data["url"], data["index_url"],
                         datetime.fromisoformat(data["expires"]), data.get("short_key"),
                         datetime.fromisoformat(ends) if ends else None)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def due_for_resign(sessions: list[dbm.SessionRow], expiry_s: int,
                   now: datetime) -> list[dbm.SessionRow]:
    """Published sessions whose short link's signature runs out soon (`resign_due`)."""
    return [s for s in sessions if s.state == dbm.PUBLISHED
            and (link := read_link(SessionLayout(s.path))) is not None
            and resign_due(link, expiry_s, now)]
