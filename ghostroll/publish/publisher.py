"""Publishing sessions: the share link, the loading page, progressive updates, the final
gallery, and the durable queue that drains by itself.

Order for one session (each step idempotent, so a crash or a dropped network at any
point is followed by a run that sends only what is missing):
1. the link: the presigned URL of `index.html` is signed locally (no round trip) and,
   with short links, a `L/<token>` page pointing at it; share.txt + share-qr.png are
   written and the queue row keeps the link and its expiry;
2. `progress.json` and a loading page as `index.html` (unless the final page is up);
3. thumbnails and share images in chunks; after each chunk a fresh `progress.json` and a
   progressive `index.html` with the photos that are up;
4. `share.zip` (and originals when enabled), then the final `index.html` and
   `progress.json` saying finished. Only then is the session `published`.

Only one process publishes at a time (publish/lock.py)."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ghostroll import faults
from ghostroll.config import Config
from ghostroll.errors import PublishError
from ghostroll.gallery.model import Gallery, GalleryItem, Progress
from ghostroll.gallery.render import progress_document, render_index, render_loading
from ghostroll.process import load_gallery
from ghostroll.publish import links
from ghostroll.publish.clock import clock_verdict, server_date, system_clock_synchronized
from ghostroll.publish.lock import publish_lock
from ghostroll.publish.qr import write_png
from ghostroll.publish.upload import BufferedLedger, UploadReport, UploadTask, upload_all
from ghostroll.storage import db as dbm
from ghostroll.storage.db import Database, SessionRow
from ghostroll.storage.session import SessionLayout, private_mode, write_text_atomic

log = logging.getLogger("ghostroll.publish")
# upload.classify_error's words for a network that is down (retry later, not a failure)
ENDPOINT_DOWN = ("cannot reach S3", "connection to S3 failed")


@dataclass(frozen=True)
class ShareLink:
    url: str  # what people get (QR, share.txt): the short link, or the presigned index
    index_url: str  # presigned URL of the session's index.html
    expires: datetime
    short_key: str | None = None  # L/<token>, when a short link is used


@dataclass(frozen=True)
class PublishEvent:
    session_id: str
    stage: str  # "link" | "loading" | "uploading" | "done" | "waiting" | "failed"
    done: int = 0
    total: int = 0
    message: str = ""
    link: ShareLink | None = None


EventFn = Callable[[PublishEvent], None]


class Offline(PublishError):
    """The endpoint cannot be reached, or the clock cannot be trusted yet: try later."""


def prefix_for(cfg: Config, session_id: str) -> str:
    return f"{cfg.s3.s3_prefix_root}{session_id}/"


# ---------------------------------------------------------------- the link


def check_clock(cfg: Config, client: Any) -> None:
    synced = system_clock_synchronized()
    date = None
    if not cfg.s3.clock_trusted and not synced:
        try:
            date = server_date(client, cfg.s3.s3_bucket)
        except (BotoCoreError, ClientError, OSError) as exc:
            raise Offline(f"cannot reach the bucket to check the clock: {exc}") from exc
    verdict = clock_verdict(trusted=cfg.s3.clock_trusted, synchronized=synced,
                            server_date=date, now=datetime.now(UTC))
    if not verdict.ok:
        raise Offline(verdict.reason)


def make_link(cfg: Config, client: Any, session_id: str, use_short: bool,
              token: str | None = None) -> ShareLink:
    """Sign the gallery link locally; no network needed. `token` keeps the short link
    of an earlier link (its page is rewritten to point at the new signature)."""
    expiry = cfg.s3.presign_expiry_seconds
    index_url = links.presign_get(client, cfg.s3.s3_bucket,
                                  prefix_for(cfg, session_id) + "index.html", expiry)
    expires = datetime.now(UTC) + timedelta(seconds=expiry)
    if not use_short:
        return ShareLink(index_url, index_url, expires)
    token = token or links.new_token()
    short = links.short_link_url(client, cfg.s3.s3_bucket, token)
    return ShareLink(short.url, index_url, expires, links.short_link_key(token))


def wants_short_links(cfg: Config, client: Any) -> bool:
    """`auto` asks the bucket whether its policy serves L/ (remembered next to the
    database, so a later link needs no round trip); unknown while offline."""
    if cfg.s3.short_links != "auto":
        return cfg.s3.short_links == "on"
    memo = cfg.storage.db_path.with_name(cfg.storage.db_path.name + ".short-links")
    key = f"{cfg.s3.s3_endpoint_url}|{cfg.s3.s3_bucket}"
    try:
        known = json.loads(memo.read_text())
        if key in known:
            return bool(known[key])
    except (OSError, ValueError):
        known = {}
    try:
        answer = links.has_short_link_policy(client, cfg.s3.s3_bucket)
    except (PublishError, BotoCoreError, ClientError, OSError) as exc:
        raise Offline(f"cannot ask the bucket for its short-link policy: {exc}") from exc
    known[key] = answer
    write_text_atomic(memo, json.dumps(known) + "\n")
    return answer


def save_link(db: Database, layout: SessionLayout, session_id: str, link: ShareLink) -> None:
    mode = private_mode()  # each of these opens the gallery
    write_text_atomic(layout.share_txt, link.url + "\n", mode)
    write_png(link.url, layout.share_qr, mode=mode)
    write_text_atomic(layout.derived / "link.json", json.dumps({
        "url": link.url, "index_url": link.index_url, "expires": link.expires.isoformat(),
        "short_key": link.short_key}) + "\n", mode)
    if db.publish_entry(session_id) is None:
        db.enqueue_publish(session_id)
    db.set_publish_link(session_id, link.url, link.expires.isoformat())


def read_link(layout: SessionLayout) -> ShareLink | None:
    """The session's saved link, whatever its age; None when there is none."""
    try:
        data = json.loads((layout.derived / "link.json").read_text(encoding="utf-8"))
        return ShareLink(data["url"], data["index_url"],
                         datetime.fromisoformat(data["expires"]), data.get("short_key"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def renew_margin(expiry_s: int) -> timedelta:
    """How long before its end a link is renewed rather than handed out: an hour, or half
    the lifetime of links shorter than two hours (else every link would be "dying" the
    moment it is made, and the one shown during the copy replaced at once)."""
    return min(timedelta(hours=1), timedelta(seconds=expiry_s / 2))


def still_good(link: ShareLink, expiry_s: int, now: datetime | None = None) -> bool:
    return link.expires - (now or datetime.now(UTC)) > renew_margin(expiry_s)


def load_link(layout: SessionLayout, expiry_s: int) -> ShareLink | None:
    """The saved link when it is still good to hand out (see renew_margin)."""
    link = read_link(layout)
    return link if link is not None and still_good(link, expiry_s) else None


def ensure_link(cfg: Config, db: Database, client: Any, session: SessionRow,
                fresh: bool = False) -> ShareLink:
    """The session's link, made once: the service's early signer and the publisher may
    both get here first, so the check and the creation hold a lock on the session."""
    layout = SessionLayout(session.path)
    layout.derived.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.derived / ".link.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        existing = None if fresh else read_link(layout)
        if existing is not None and still_good(existing, cfg.s3.presign_expiry_seconds):
            return existing
        # Renewing keeps the short link: the QR already shown (on the panel during the
        # copy, or sent on) keeps working, its page now pointing at the new signature.
        # Only `fresh` (reshare) hands out a new one.
        token = existing.short_key.removeprefix(links.SHORT_LINK_PREFIX) \
            if existing is not None and existing.short_key else None
        link = make_link(cfg, client, session.id, wants_short_links(cfg, client), token)
        save_link(db, layout, session.id, link)
        return link
    finally:
        os.close(fd)


# ---------------------------------------------------------------- uploading


class _Sender:
    """Uploads for one session, with the resolver for presigned asset URLs."""

    def __init__(self, cfg: Config, db: Database, client: Any, session: SessionRow) -> None:
        self.cfg, self.db, self.client, self.session = cfg, db, client, session
        self.layout = SessionLayout(session.path)
        self.prefix = prefix_for(cfg, session.id)
        self.ledger = db.upload_ledger(cfg.s3.endpoint_id, cfg.s3.s3_bucket)
        self.tmp = Path(tempfile.mkdtemp(prefix="ghostroll-pub-"))
        self.signed: dict[str, str] = {}

    def resolve(self, key: str) -> str:
        """One signature per key and run: every progressive page would otherwise sign
        every asset again (~0.15 ms of CPU each, 16,000 for a card of 1000 photos)."""
        if key not in self.signed:
            self.signed[key] = links.presign_get(
                self.client, self.cfg.s3.s3_bucket, self.prefix + key,
                self.cfg.s3.presign_expiry_seconds)
        return self.signed[key]

    def local(self, key: str) -> Path:
        if key.startswith("originals/"):
            return self.layout.originals / key.removeprefix("originals/")
        return self.layout.derived / key

    def send(self, files: list[tuple[str, Path]], at_root: bool = False) -> UploadReport:
        """Upload (key, file) pairs; keys are under the session's prefix unless
        `at_root` (the short-link page lives at L/<token> for the whole bucket)."""
        prefix = "" if at_root else self.prefix
        tasks = [UploadTask.for_file(prefix + key, path) for key, path in files]
        ledger = BufferedLedger(self.ledger)
        try:
            report = upload_all(
                self.client, self.cfg.s3.s3_bucket, tasks, ledger,
                workers=self.cfg.s3.upload_workers,
                multipart_threshold_bytes=self.cfg.s3.multipart_threshold_mb << 20)
        finally:
            ledger.flush()
        if report.failed:
            first = next(iter(report.failed.values()))
            if first.startswith(ENDPOINT_DOWN):
                raise Offline(f"offline: {first}")
            raise PublishError(f"upload failed: {report.summary()}")
        return report

    def text(self, key: str, content: str, at_root: bool = False) -> None:
        path = self.tmp / key.replace("/", "_")
        path.write_text(content, encoding="utf-8")
        self.send([(key, path)], at_root)


def publish_session(cfg: Config, db: Database, client: Any, session: SessionRow,
                    on_event: EventFn | None = None, chunk: int = 0) -> ShareLink:
    """Publish one processed session completely; raises Offline or PublishError."""
    emit = on_event or (lambda e: None)
    link = ensure_link(cfg, db, client, session)
    emit(PublishEvent(session.id, "link", link=link))
    gallery = load_gallery(SessionLayout(session.path), session.id)
    sender = _Sender(cfg, db, client, session)
    photos = [i for i in gallery.items if i.thumb]
    total = len(photos)
    progress_url = sender.resolve("progress.json")
    if link.short_key:
        sender.text(link.short_key, links.short_link_page(link.index_url), at_root=True)
    if sender.ledger.uploaded_sha(sender.prefix + "index.html") is None:
        sender.text("progress.json", json.dumps(progress_document(0, total, False)))
        sender.text("index.html", render_loading(gallery.title, progress_url, link.expires))
        emit(PublishEvent(session.id, "loading", 0, total, link=link))
    step = chunk or max(8, total // 10)
    up: set[GalleryItem] = set()
    for start in range(0, total, step):
        batch = photos[start:start + step]
        files = []
        for item in batch:
            for key in dict.fromkeys((item.thumb, item.share)):  # may be one picture
                if key:
                    files.append((key, sender.local(key)))
        report = sender.send(files)
        up.update(batch)
        done = len(up)
        # a round the streaming pipeline already sent changes nothing a recipient sees
        if done < total and report.uploaded:
            partial = Gallery(gallery.title, session.id,
                              tuple(i for i in gallery.items if i in up),
                              expires=link.expires, progress=Progress(done, total, False))
            sender.text("index.html", render_index(partial, sender.resolve, progress_url))
            sender.text("progress.json", json.dumps(progress_document(done, total, False)))
        emit(PublishEvent(session.id, "uploading", done, total, link=link))
    extra = []
    if gallery.zip_key:
        extra.append((gallery.zip_key, sender.local(gallery.zip_key)))
    if not cfg.s3.upload_originals:
        # Originals stay on the device unless enabled (camera videos carry GPS too): the
        # shared page shows video tiles without a download link.
        gallery = replace(gallery, items=tuple(replace(i, original=None)
                                               for i in gallery.items))
    else:
        extra += [("originals/" + p.relative_to(sender.layout.originals).as_posix(), p)
                  for p in sorted(sender.layout.originals.rglob("*")) if p.is_file()]
    if extra:
        sender.send(extra)
    final = Gallery(gallery.title, session.id, gallery.items, gallery.zip_key, link.expires)
    faults.fault("publish.index")
    sender.text("index.html", render_index(final, sender.resolve))
    sender.text("progress.json", json.dumps(progress_document(total, total, True)))
    db.set_publish_state(session.id, dbm.PUBLISHED_Q)
    db.set_session_state(session.id, dbm.PUBLISHED)
    emit(PublishEvent(session.id, "done", total, total, link=link))
    log.info("session %s published: %s", session.id, link.url.split("?")[0])
    return link


# ---------------------------------------------------------------- the queue


@dataclass
class DrainResult:
    published: list[str]
    waiting: str | None = None  # why the rest waits (offline, clock)
    failed: dict[str, str] | None = None


def queue_processed(db: Database) -> None:
    """Every processed session not yet published is in the queue."""
    for session in db.sessions():
        if session.state == dbm.PROCESSED and db.publish_entry(session.id) is None:
            db.enqueue_publish(session.id)


def drain(cfg: Config, db: Database, client: Any, on_event: EventFn | None = None,
          only: str | None = None, failed_before: Mapping[str, str] | None = None
          ) -> DrainResult:
    """Publish every queued session (or just `only`), oldest first. `failed_before`:
    sessions whose uploads already failed in this run (the streaming pipeline), with
    why: they fail here as they would have, and are tried again by the next run."""
    result = DrainResult([], failed={})
    failed_before = failed_before or {}
    with publish_lock(cfg.storage.db_path):
        queue_processed(db)
        ids = [only] if only else db.queued_sessions()
        if ids:
            try:
                check_clock(cfg, client)
            except Offline as exc:
                result.waiting = str(exc)
                return result
        for session_id in ids:
            session = db.session(session_id)
            if session is None or session.state not in (dbm.PROCESSED, dbm.PUBLISHED):
                continue
            if session_id in failed_before:
                message = failed_before[session_id]
                db.set_publish_state(session_id, dbm.RETRY, error=message)
                assert result.failed is not None
                result.failed[session_id] = message
                if on_event:
                    on_event(PublishEvent(session_id, "failed", message=message))
                continue
            try:
                publish_session(cfg, db, client, session, on_event)
                result.published.append(session_id)
            except Offline as exc:
                db.set_publish_state(session_id, dbm.RETRY, error=str(exc))
                result.waiting = str(exc)
                if on_event:
                    on_event(PublishEvent(session_id, "waiting", message=str(exc)))
                break
            except (PublishError, OSError, ValueError) as exc:
                db.set_publish_state(session_id, dbm.RETRY, error=str(exc))
                assert result.failed is not None
                result.failed[session_id] = str(exc)
                if on_event:
                    on_event(PublishEvent(session_id, "failed", message=str(exc)))
    return result

