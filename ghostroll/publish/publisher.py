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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ghostroll import faults
from ghostroll.config import Config
from ghostroll.errors import PublishError
from ghostroll.gallery.model import Gallery, GalleryItem, Progress
from ghostroll.gallery.render import (
    gallery_preview,
    og_tags,
    progress_document,
    render_index,
    render_loading,
)
from ghostroll.logs import session_log_handler
from ghostroll.process import load_gallery
from ghostroll.publish import links, short_memo
from ghostroll.publish.clock import clock_verdict, server_date, system_clock_synchronized
from ghostroll.publish.linkfile import ShareLink, due_for_resign, read_link
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


def page_bucket(cfg: Config) -> str:
    """Where short-link pages go: the public short_link_bucket, else L/ in s3_bucket."""
    return cfg.s3.short_link_bucket or cfg.s3.s3_bucket


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
              token: str | None = None, ends: datetime | None = None) -> ShareLink:
    """Sign the gallery link locally; no network needed. `token` keeps the short link
    of an earlier link (its page is rewritten to point at the new signature) and `ends`
    its end; a new short link ends `link_days` from now. A signature never outlives the
    link's end."""
    now = datetime.now(UTC)
    expiry = cfg.s3.presign_expiry_seconds
    if use_short:
        ends = ends or now + timedelta(days=cfg.s3.link_days)
        expiry = max(1, min(expiry, int((ends - now).total_seconds())))
    index_url = links.presign_get(client, cfg.s3.s3_bucket,
                                  prefix_for(cfg, session_id) + "index.html", expiry)
    expires = now + timedelta(seconds=expiry)
    if not use_short:
        return ShareLink(index_url, index_url, expires)
    token = token or links.new_token()
    short = links.short_link_url(client, page_bucket(cfg), token,
                                 cfg.s3.short_link_base_url)
    return ShareLink(short.url, index_url, expires, links.short_link_key(token), ends)


def wants_short_links(cfg: Config, client: Any) -> bool:
    """`auto` asks the bucket whether its policy serves L/ (remembered for a while next
    to the database, see short_memo.py); unknown while offline. A short_link_bucket is
    public by the provider's setting: nothing to ask."""
    if cfg.s3.short_link_bucket and cfg.s3.short_links != "off":
        return True
    if cfg.s3.short_links != "auto":
        return cfg.s3.short_links == "on"
    now = datetime.now(UTC)
    known = short_memo.recall(cfg.storage.db_path, cfg.s3, now)
    if known is not None:
        return known
    try:
        answer = links.has_short_link_policy(client, cfg.s3.s3_bucket)
    except (PublishError, BotoCoreError, ClientError, OSError) as exc:
        raise Offline(f"cannot ask the bucket for its short-link policy: {exc}") from exc
    short_memo.remember(cfg.storage.db_path, cfg.s3, answer, now)
    return answer


def save_link(db: Database, layout: SessionLayout, session_id: str, link: ShareLink) -> None:
    mode = private_mode()  # each of these opens the gallery
    write_text_atomic(layout.share_txt, link.url + "\n", mode)
    write_png(link.url, layout.share_qr, mode=mode)
    write_text_atomic(layout.derived / "link.json", json.dumps({
        "url": link.url, "index_url": link.index_url, "expires": link.expires.isoformat(),
        "short_key": link.short_key, "ends": link.ends.isoformat() if link.ends else None,
    }) + "\n", mode)
    if db.publish_entry(session_id) is None:
        db.enqueue_publish(session_id)
    db.set_publish_link(session_id, link.url, link.expires.isoformat())


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
                fresh: bool = False, resign: bool = False) -> ShareLink:
    """The session's link, made once: the service's early signer and the publisher may
    both get here first, so the check and the creation hold a lock on the session.
    `resign`: a new signature for the same short link even when the old one is good."""
    layout = SessionLayout(session.path)
    layout.derived.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.derived / ".link.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        existing = None if fresh else read_link(layout)
        if (existing is not None and not resign
                and still_good(existing, cfg.s3.presign_expiry_seconds)):
            return existing
        # Renewing keeps the short link until its end (link_days): the QR already shown
        # (on the panel during the copy, or sent on) keeps working, its page now pointing
        # at the new signature. `fresh` (reshare), or a link past its end, gets a new one.
        # A link saved before link_days existed has no end: it starts counting now.
        keep = (existing is not None and existing.short_key is not None
                and (existing.ends is None or existing.ends > datetime.now(UTC)))
        token = existing.short_key.removeprefix(links.SHORT_LINK_PREFIX) \
            if keep and existing and existing.short_key else None
        link = make_link(cfg, client, session.id, wants_short_links(cfg, client), token,
                         existing.ends if keep and existing else None)
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

    def resolve(self, key: str) -> str:
        return links.asset_url(self.client, self.cfg.s3.s3_bucket, self.prefix + key,
                               self.cfg.s3.presign_expiry_seconds)

    def local(self, key: str) -> Path:
        if key.startswith("originals/"):
            return self.layout.originals / key.removeprefix("originals/")
        return self.layout.derived / key

    def send(self, files: list[tuple[str, Path]], at_root: bool = False,
             bucket: str | None = None) -> UploadReport:
        """Upload (key, file) pairs; keys are under the session's prefix unless
        `at_root` (the short-link page lives at L/<token> for the whole bucket), into
        s3_bucket unless `bucket` names another one."""
        prefix = "" if at_root else self.prefix
        tasks = [UploadTask.for_file(prefix + key, path) for key, path in files]
        base = self.ledger if bucket in (None, self.cfg.s3.s3_bucket) else \
            self.db.upload_ledger(self.cfg.s3.endpoint_id, bucket)
        if self.cfg.archive.bucket_storage_class != "default":  # originals only
            tasks = [replace(t, storage_class=self.cfg.archive.bucket_storage_class.upper())
                     if t.key.startswith(self.prefix + "originals/") else t for t in tasks]
        ledger = BufferedLedger(base)
        try:
            report = upload_all(
                self.client, bucket or self.cfg.s3.s3_bucket, tasks, ledger,
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

    def text(self, key: str, content: str, at_root: bool = False,
             bucket: str | None = None) -> None:
        path = self.tmp / key.replace("/", "_")
        path.write_text(content, encoding="utf-8")
        self.send([(key, path)], at_root, bucket)


def publish_session(cfg: Config, db: Database, client: Any, session: SessionRow,
                    on_event: EventFn | None = None, chunk: int = 0) -> ShareLink:
    """Publish one processed session completely; raises Offline or PublishError."""
    emit = on_event or (lambda e: None)
    link = ensure_link(cfg, db, client, session)
    emit(PublishEvent(session.id, "link", link=link))
    gallery = load_gallery(SessionLayout(session.path), session.id)
    sender = _Sender(cfg, db, client, session)
    photos = [i for i in gallery.items if i.thumb or i.share]
    total = len(photos)
    progress_url = sender.resolve("progress.json")
    preview = gallery_preview(gallery, sender.resolve)
    if link.short_key:
        sender.text(link.short_key, links.short_link_page(link.index_url, gallery.title,
                                                          og_tags(preview)), at_root=True,
                    bucket=page_bucket(cfg))
    if sender.ledger.uploaded_sha(sender.prefix + "index.html") is None:
        sender.text("progress.json", json.dumps(progress_document(0, total, False)))
        sender.text("index.html", render_loading(gallery.title, progress_url, link.expires,
                                                 total, preview))
        emit(PublishEvent(session.id, "loading", 0, total, link=link))
    step = chunk or max(8, total // 10)
    up: set[GalleryItem] = set()
    for start in range(0, total, step):
        batch = photos[start:start + step]
        files = []
        for item in batch:
            for key in dict.fromkeys((item.thumb, item.share, item.motion)):  # may be one picture
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
        # shared page offers a video's copy without metadata, when there is one.
        gallery = replace(gallery, items=tuple(replace(i, original=None)
                                               for i in gallery.items))
    else:
        extra += [("originals/" + p.relative_to(sender.layout.originals).as_posix(), p)
                  for p in sorted(sender.layout.originals.rglob("*")) if p.is_file()]
    if extra:
        sender.send(extra)
    final = Gallery(gallery.title, session.id, gallery.items, gallery.zip_key, link.expires,
                    empty_note=gallery.empty_note)
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
    resigned: list[str] = field(default_factory=list)  # links kept alive (link_days)


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
                _publish_logged(cfg, db, client, session, on_event)
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
        if not only and result.waiting is None:
            resign_links(cfg, db, client, result)
    return result


def _publish_logged(cfg: Config, db: Database, client: Any, session: SessionRow,
                    on_event: EventFn | None) -> ShareLink:
    """publish_session, its lines also in the session's ghostroll.log (when writable)."""
    target = logging.getLogger("ghostroll")
    try:
        handler: logging.Handler | None = session_log_handler(
            SessionLayout(session.path).log, level=logging.INFO)
        target.addHandler(handler)
    except OSError:
        handler = None
    try:
        return publish_session(cfg, db, client, session, on_event)
    except Offline as exc:
        log.warning("publishing session %s waits: %s", session.id, exc)
        raise
    except (PublishError, OSError, ValueError) as exc:
        log.error("publishing session %s failed: %s", session.id, exc)
        raise
    finally:
        if handler is not None:
            target.removeHandler(handler)
            handler.close()


def resign_links(cfg: Config, db: Database, client: Any, result: DrainResult) -> None:
    """Re-sign the short links of published sessions whose signature is running out
    (lifetime.resign_due): the same short link then points at a fresh gallery page."""
    now = datetime.now(UTC)
    due = due_for_resign(db.sessions(), cfg.s3.presign_expiry_seconds, now)
    if due:
        try:
            check_clock(cfg, client)
        except Offline as exc:
            result.waiting = str(exc)
            return
    for session in due:
        try:
            ensure_link(cfg, db, client, session, resign=True)
            publish_session(cfg, db, client, session)
            result.resigned.append(session.id)
        except Offline as exc:
            result.waiting = str(exc)
            return
        except (PublishError, OSError, ValueError) as exc:
            assert result.failed is not None
            result.failed[session.id] = f"re-signing its link: {exc}"

