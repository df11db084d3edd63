"""`ghostroll rename SESSION "Name"`: the album's name, given by a person.

The name is kept in the session folder (`album-name.txt`, read whenever the session is
processed), the local gallery is rewritten at once, and a published session is queued
to be published again, so the shared page and the short-link page carry the new name."""

from __future__ import annotations

import unicodedata
from dataclasses import replace

from ghostroll.process import ALBUM_NAME, load_gallery, save_gallery
from ghostroll.storage import db as dbm
from ghostroll.storage.db import Database, SessionRow
from ghostroll.storage.session import SessionLayout, write_text_atomic

MAX_NAME = 120


def clean_name(name: str) -> str:
    """The name as it will be shown; raises ValueError for one that cannot be. Pure."""
    text = " ".join(name.split())
    if not text:
        raise ValueError("the album name is empty")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise ValueError("the album name holds control characters")
    if len(text) > MAX_NAME:
        raise ValueError(f"the album name is {len(text)} characters; at most {MAX_NAME}")
    return text


def rename(db: Database, session: SessionRow, name: str) -> str:
    """Saves the name and rewrites the local gallery; returns what was done."""
    title = clean_name(name)
    layout = SessionLayout(session.path)
    write_text_atomic(layout.root / ALBUM_NAME, title + "\n")
    if session.state not in (dbm.PROCESSED, dbm.PUBLISHED):
        return f"session {session.id} is named {title!r} once it is processed"
    gallery = load_gallery(layout, session.id)
    save_gallery(layout, replace(gallery, title=title))
    if session.state == dbm.PUBLISHED or db.publish_entry(session.id) is not None:
        db.enqueue_publish(session.id)
        return f"session {session.id} renamed {title!r}; its shared page is published again"
    return f"session {session.id} renamed {title!r}"
