"""The derive and upload stages of one process, fed one recorded original at a time.

The card phase calls `Stream.recorded` for each original once it is verified and
recorded (never before: nothing is derived or shared from an unverified copy). Pictures
are derived at once on the bounded pool (`derive.pool.DerivePool`); each finished
derivative goes to the uploader thread, which sends thumbnails before share images and,
at most every `PAGE_EVERY_S` seconds, a progressive `index.html` + `progress.json` once
the share link exists, so the gallery fills while the card is still being read.

Everything here is an early start, not a second path: the processing and publishing that
follow (`process.process_pending`, `publisher.drain`) decide what the session is. They
reuse the derivatives made here (`ready`, by job) and the upload ledger skips what was
sent; whatever failed or was skipped here (offline, a full disk, two card paths with one
gallery id) is simply done there."""

from __future__ import annotations

import errno
import json
import logging
import queue
import shutil
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ghostroll.card.ingest import Recorded
from ghostroll.card.media import Kind
from ghostroll.config import Config
from ghostroll.derive import DeriveJob, DeriveResult
from ghostroll.derive.pool import DerivePool
from ghostroll.errors import ProcessingStopped
from ghostroll.gallery import model as gm
from ghostroll.gallery.render import progress_document, render_index
from ghostroll.gallery.shots import CardEntry, Shot, plan_shots
from ghostroll.process import gallery_item, gallery_title
from ghostroll.storage.db import Database, SessionRow
from ghostroll.storage.session import SessionLayout

if TYPE_CHECKING:
    from ghostroll.pipeline.sender import UploadProcess

log = logging.getLogger("ghostroll.pipeline")
PICTURES = frozenset({Kind.JPEG, Kind.HEIC, Kind.TIFF})  # always the picture of a shot
PAGE_EVERY_S = 3.0  # progressive pages at most this often
BATCH = 64  # derivatives per upload round
GATHER_S = 0.25  # a round waits this long after its first derivative for more
# Derivatives waiting for the uploader: when it is this far behind, the derive workers
# wait (their `put` blocks) instead of piling up finished work. It cannot deadlock: the
# uploader takes from the queue until the end mark even after it stopped sending.
UPLOAD_QUEUE = 4 * BATCH


@dataclass
class _Session:
    row: SessionRow
    ids: set[str] = field(default_factory=set)
    items: list[gm.GalleryItem] = field(default_factory=list)  # uploaded so far
    submitted: int = 0


class Stream:
    """Derivatives (and uploads, when `client` is given) started as originals are
    recorded. `close()` waits for both stages; `ready` then holds every derivative made.
    Jobs wait for the derive pool unbounded (a path each; the pool's memory budget bounds
    the pixels): the card phase hands them over and never waits for derivation."""

    def __init__(self, cfg: Config, client: Any | None = None) -> None:
        self.cfg = cfg
        self.ready: dict[DeriveJob, DeriveResult | ProcessingStopped] = {}
        self.sessions: dict[str, _Session] = {}
        self.futures: list[tuple[DeriveJob, Future[DeriveResult]]] = []
        self.shots: dict[DeriveJob, tuple[_Session, Shot]] = {}
        # session id -> why an upload failed (not offline): publishing reports it
        self.upload_failed: dict[str, str] = {}
        self.lock = threading.Lock()
        self.card_needs = 0  # bytes the card phase still needs on the session disk
        self.deferring = False  # a derivative waits for processing: room was short
        self.derived = False  # derivations_done() has run
        self.pool = DerivePool(cfg.images, on_result=self._derived, gate=self._room_for)
        self.uploader = _Uploader(cfg, client, self) if client is not None else None

    def recorded(self, rec: Recorded) -> None:
        """Called by the card phase, on its thread, for each durable original."""
        self.card_needs = rec.card_bytes_left + (self.cfg.storage.free_space_margin_mb << 20)
        if rec.kind not in PICTURES:
            return  # RAW, video, sidecars: their shot depends on the rest of the group
        entry = CardEntry(rec.rel_path, rec.kind, rec.group, rec.sha256, rec.size)
        shot = plan_shots([entry])[0]
        with self.lock:
            session = self.sessions.setdefault(rec.session.id, _Session(rec.session))
            if shot.id in session.ids:
                return  # two card paths, one gallery id: processing numbers them
            session.ids.add(shot.id)
            session.submitted += 1
            layout = SessionLayout(rec.session.path)
            job = DeriveJob(rec.stored, rec.kind, layout.share_dir / f"{shot.id}.jpg",
                            layout.thumbs_dir / f"{shot.id}.jpg")
            self.shots[job] = (session, shot)
        self.futures.append((job, self.pool.submit(job)))

    def _room_for(self, job: DeriveJob) -> bool:
        """The originals still to copy come first: a picture is derived now only if the
        session disk keeps their room (and the margin) once its derivatives, up to its
        original's size (a small JPEG shared as it is), are written. Otherwise
        processing makes them after the card, with its own space check."""
        try:
            free = shutil.disk_usage(job.source.parent).free
            needed = self.card_needs + job.source.stat().st_size
        except OSError:
            return True  # the derive itself says what is wrong
        if free >= needed:
            return True
        if not self.deferring:
            self.deferring = True
            log.info("share images wait until the card is copied: the session disk keeps "
                     "its room for the originals (%d MB free)", free >> 20)
        return False

    def _derived(self, result: DeriveResult) -> None:
        with self.lock:
            self.ready[result.job] = result
        if self.uploader is not None and result.share and result.thumb:
            self.uploader.put(result)

    def derivations_done(self) -> None:
        """Wait for the derive pool: `ready` is complete (the uploads may still run)."""
        if self.derived:
            return
        self.derived = True
        self.pool.close()
        for job, future in self.futures:
            exc = future.exception()
            if isinstance(exc, ProcessingStopped) and exc.errno != errno.ECANCELED:
                self.ready[job] = exc  # the machine failed: processing stops on it

    def close(self) -> None:
        """Wait for both stages; `upload_failed` is then complete. Idempotent."""
        self.derivations_done()
        if self.uploader is not None:
            self.uploader.close()
            self.uploader = None

    def origin(self, result: DeriveResult) -> tuple[_Session, Shot]:
        with self.lock:
            return self.shots[result.job]


class _Uploader:
    """One thread sending derivatives as they come, in rounds of up to BATCH."""

    def __init__(self, cfg: Config, client: Any, stream: Stream) -> None:
        self.cfg, self.client, self.stream = cfg, client, stream
        self.queue: queue.Queue[DeriveResult | None] = queue.Queue(maxsize=UPLOAD_QUEUE)
        self.tmp = Path(tempfile.mkdtemp(prefix="ghostroll-stream-"))
        self.last_page = 0.0
        self.ended = False  # the end mark (None) was taken from the queue
        self.sender: UploadProcess | None = None  # started by the thread: never in the way
        self.thread = threading.Thread(target=self._run, name="ghostroll-upload",
                                       daemon=True)
        self.thread.start()

    def put(self, result: DeriveResult) -> None:
        self.queue.put(result)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _run(self) -> None:
        from ghostroll.pipeline.sender import UploadProcess
        from ghostroll.publish.publisher import Offline, check_clock

        try:
            check_clock(self.cfg, self.client)
            self.sender = UploadProcess(self.cfg.s3)
            with Database(self.cfg.storage.db_path) as db:
                self._send_all(db)
        except Offline as exc:
            log.info("uploads wait for publishing: %s", exc)
        except Exception as exc:  # an early start only: publishing does it properly
            log.warning("early uploads stopped (publishing sends the rest): %s: %s",
                        type(exc).__name__, exc)
            log.debug("early upload failure", exc_info=True)
        finally:
            if self.sender is not None:
                self.sender.close()
            while not self.ended:  # the rest is publishing's: let close() return
                self.ended = self.queue.get() is None

    def _send_all(self, db: Database) -> None:
        from ghostroll.publish.upload import BufferedLedger

        ledger = BufferedLedger(db.upload_ledger(self.cfg.s3.endpoint_id,
                                                 self.cfg.s3.s3_bucket))
        done = False
        while not done:
            batch, done = self._gather()
            self.ended = done
            try:
                if batch and not self._send(batch, ledger):
                    return
                if batch and (done or time.monotonic() - self.last_page >= PAGE_EVERY_S):
                    self._pages(batch, ledger)
            finally:
                ledger.flush()

    def _gather(self) -> tuple[list[DeriveResult], bool]:
        """One round: what arrives within GATHER_S of its first derivative, up to BATCH,
        and whether the end mark came. Fewer, larger rounds: each costs a ledger commit
        (a write lock the card phase waits for) and a pool of upload threads."""
        batch: list[DeriveResult] = []
        item = self.queue.get()
        deadline = time.monotonic() + GATHER_S
        while item is not None:
            batch.append(item)
            left = deadline - time.monotonic()
            if len(batch) >= BATCH or left <= 0:
                return batch, False
            try:
                item = self.queue.get(timeout=left)
            except queue.Empty:
                return batch, False
        return batch, True

    def _send(self, batch: list[DeriveResult], ledger: Any) -> bool:
        from ghostroll.publish.publisher import prefix_for
        from ghostroll.publish.upload import UploadTask

        tasks = []
        for kind in ("thumb", "share"):  # every thumbnail of the round first
            for result in batch:
                session, _ = self.stream.origin(result)
                path = getattr(result, kind)
                if kind == "share" and path == result.thumb:
                    continue  # a small picture that is its own thumbnail
                key = f"{path.parent.name}/{path.name}"
                tasks.append(UploadTask.for_file(prefix_for(self.cfg, session.row.id) + key,
                                                 path))
        assert self.sender is not None
        report = self.sender.upload_all(
            self.cfg.s3.s3_bucket, tasks, ledger, workers=self.cfg.s3.upload_workers,
            multipart_threshold_bytes=self.cfg.s3.multipart_threshold_mb << 20)
        if not self._ok(report, [self.stream.origin(result)[0] for result in batch]):
            return False
        for result in batch:
            session, shot = self.stream.origin(result)
            item = gallery_item(shot, result, {})
            if item is not None:
                session.items.append(item)
        return True

    def _ok(self, report: Any, sessions: list[_Session]) -> bool:
        """False when something failed: offline only waits for publishing, anything else
        fails these sessions' publishing in this run."""
        if not report.failed:
            return True
        from ghostroll.publish.publisher import ENDPOINT_DOWN

        log.info("early uploads stop: %s", report.summary())
        if not next(iter(report.failed.values())).startswith(ENDPOINT_DOWN):
            for session in sessions:
                self.stream.upload_failed.setdefault(
                    session.row.id, f"upload failed: {report.summary()}")
        return False

    def _pages(self, batch: list[DeriveResult], ledger: Any) -> None:
        """A progressive index.html + progress.json for each session of the round whose
        link exists (the page is what the link opens)."""
        from ghostroll.publish.links import asset_url
        from ghostroll.publish.publisher import prefix_for, read_link
        from ghostroll.publish.upload import UploadTask

        assert self.sender is not None
        self.last_page = time.monotonic()
        sessions = (self.stream.origin(result)[0] for result in batch)
        for session in {s.row.id: s for s in sessions}.values():
            layout = SessionLayout(session.row.path)
            link = read_link(layout)
            if link is None:
                continue
            prefix = prefix_for(self.cfg, session.row.id)

            def resolve(key: str, prefix: str = prefix) -> str:
                return asset_url(self.client, self.cfg.s3.s3_bucket, prefix + key,
                                 self.cfg.s3.presign_expiry_seconds)

            done, total = len(session.items), session.submitted
            gallery = gm.Gallery(gallery_title(layout, session.row, session.items), session.row.id,
                                 gm.sort_items(session.items), expires=link.expires,
                                 progress=gm.Progress(done, total, False))
            pages = {"index.html": render_index(gallery, resolve, resolve("progress.json")),
                     "progress.json": json.dumps(progress_document(done, total, False))}
            tasks = []
            for name, text in pages.items():
                path = self.tmp / f"{session.row.id}-{name}"
                path.write_text(text, encoding="utf-8")
                tasks.append(UploadTask.for_file(prefix + name, path))
            report = self.sender.upload_all(self.cfg.s3.s3_bucket, tasks, ledger, workers=2,
                                            multipart_threshold_bytes=64 << 20)
            self._ok(report, [session])
