"""The whole job for one card, as `ghostroll run` does it: the card phase with the
streaming pipeline beside it (each recorded original derived, and its derivatives
uploaded, while the rest of the card is read: `pipeline/stream.py`), then the processing
of every session whose copy is complete (this card's and any left over from an earlier
run; it reuses what the stream made), then publishing (when a bucket is configured).
When the card brings nothing new and nothing is pending, neither Pillow nor boto3 is
imported."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ghostroll.card.ingest import IngestResult, Recorded, ingest_card
from ghostroll.card.progress import TerminalProgress, summary_lines
from ghostroll.card.volume import identify
from ghostroll.config import Config
from ghostroll.exitcodes import ExitCode
from ghostroll.pipeline.pending import pending
from ghostroll.storage.db import Database, SessionRow

if TYPE_CHECKING:
    from ghostroll.archive.receipt import ArchiveOutcome
    from ghostroll.pipeline.stream import Stream
    from ghostroll.process import ProcessResult, Ready
    from ghostroll.publish.publisher import DrainResult, PublishEvent

# The early link runs inside the card phase: a child of the ingest logger, so its lines
# also land in the session's ghostroll.log.
link_log = logging.getLogger("ghostroll.ingest.link")


@dataclass
class JobResult:
    ingest: IngestResult
    processed: list[ProcessResult] = field(default_factory=list)
    publish: DrainResult | None = None
    publish_note: str = ""
    archive: ArchiveOutcome | None = None

    @property
    def exit_code(self) -> int:
        if self.ingest.failed or not self.ingest.complete:
            return ExitCode.PARTIAL
        if any(p.stopped or p.set_aside for p in self.processed):
            return ExitCode.PARTIAL
        if self.publish is not None and self.publish.failed:
            return ExitCode.PARTIAL
        if self.archive is not None and self.archive.failed:
            return ExitCode.PARTIAL
        if self.publish is not None and self.publish.waiting:
            return ExitCode.QUEUED
        return ExitCode.OK

    def lines(self) -> list[str]:
        lines = summary_lines(self.ingest)
        for p in self.processed:
            if p.stopped or p.set_aside:
                lines.append(p.stopped or f"session {p.session_id} set aside: {p.set_aside}")
                continue
            lines.append(f"gallery for {p.session_id}: {_count(p.made, 'photo')}, "
                         f"{_count(p.videos, 'video')}"
                         + (f", {len(p.problems)} could not be shown" if p.problems else ""))
            lines.extend(f"  not shown: {problem}" for problem in p.problems)
            lines.extend(f"  numbering gap: {gap}" for gap in p.info)
        if self.publish_note:
            lines.append(self.publish_note)
        if self.publish is not None:
            lines.extend(f"published {sid}" for sid in self.publish.published)
            if self.publish.waiting:
                lines.append(f"publishing queued: {self.publish.waiting}; the card is safe, "
                             "`ghostroll publish` (or the appliance) sends the rest later")
            for sid, error in (self.publish.failed or {}).items():
                lines.append(f"publishing {sid} failed: {error}")
        session = self.ingest.session
        if session is not None and (session.path / "share.txt").exists():
            lines.append(f"share link: {(session.path / 'share.txt').read_text().strip()}")
        if self.archive is not None:
            lines.extend(self.archive.lines())
        return lines


def process_pending(cfg: Config, db: Database, out: TextIO | None = None,
                    ready: Ready | None = None) -> list[ProcessResult]:
    """Process every session whose card phase is complete but not yet processed (see
    `process.process_pending`: set-aside sessions are skipped, a full disk stops)."""
    last = 0.0

    def report(sid: str, done: int, total: int) -> None:
        nonlocal last
        if out is not None and (time.monotonic() - last > 2 or done == total):
            last = time.monotonic()
            out.write(f"making share images for {sid}: {done}/{total}\n")
            out.flush()

    from ghostroll import process

    return process.process_pending(cfg, db, report, ready)


def publish_all(cfg: Config, db: Database, out: TextIO | None,
                only: str | None = None, client: Any | None = None,
                failed_before: dict[str, str] | None = None) -> DrainResult:
    from ghostroll.publish.publisher import drain
    from ghostroll.publish.s3client import make_client

    def report(event: PublishEvent) -> None:
        if out is not None and event.stage in ("link", "uploading"):
            text = (f"share link for {event.session_id}: {event.link.url}" if event.stage ==
                    "link" and event.link else
                    f"uploading {event.session_id}: {event.done}/{event.total}")
            out.write(text + "\n")
            out.flush()

    return drain(cfg, db, client or make_client(cfg.s3), report, only=only,
                 failed_before=failed_before)


def early_link(cfg: Config, db: Database, session_id: str, client: Any | None = None) -> None:
    """The share link exists as soon as the session does: signing is local. Called in
    the middle of the card phase, so it never raises: a link that cannot be made now is
    made by the publisher later, and the copy goes on."""
    from ghostroll.publish.publisher import Offline, check_clock, ensure_link
    from ghostroll.publish.s3client import make_client

    try:
        session = db.session(session_id)
        client = client or make_client(cfg.s3)
        check_clock(cfg, client)
        if session is not None:
            ensure_link(cfg, db, client, session)
    except Offline as exc:
        link_log.info("share link for %s waits: %s", session_id, exc)
    except Exception as exc:  # the card phase must never depend on the network or on S3
        link_log.warning("share link for %s not made now (publishing makes it later): "
                         "%s: %s", session_id, type(exc).__name__, exc)
        link_log.debug("early link failure", exc_info=True)


class EarlyLinks:
    """Signs each new session's link beside the copy, on its own thread and database
    connection: the card phase never waits for the clock check or the bucket."""

    def __init__(self, cfg: Config, client: Callable[[], Any]) -> None:
        self.cfg = cfg
        self.client = client
        self.threads: list[threading.Thread] = []

    def __call__(self, session: SessionRow) -> None:
        thread = threading.Thread(target=self._sign, args=(session.id,), daemon=True,
                                  name="ghostroll-early-link")
        thread.start()
        self.threads.append(thread)

    def _sign(self, session_id: str) -> None:
        try:
            with Database(self.cfg.storage.db_path) as db:
                early_link(self.cfg, db, session_id, self.client())
        except Exception as exc:  # the database could not be opened: publishing retries
            link_log.warning("share link for %s not made now: %s", session_id, exc)

    def wait(self) -> None:
        for thread in self.threads:
            thread.join()


def run_job(path: Path, cfg: Config, volume_id: str | None = None, label: str | None = None,
            out: TextIO = sys.stdout, publish: bool = True) -> JobResult:
    volume = identify(path, volume_id, label)
    uploads = cfg.s3.enabled and publish
    client = _OneClient(cfg)
    stream: Stream | None = None

    def recorded(rec: Recorded) -> None:
        nonlocal stream
        if stream is None:  # the first new original: only now Pillow (and boto3)
            from ghostroll.pipeline.stream import Stream
            stream = Stream(cfg, client() if uploads else None)
        stream.recorded(rec)

    with Database(cfg.storage.db_path) as db:
        links = EarlyLinks(cfg, client) if uploads else None
        try:
            ingest = ingest_card(path, cfg, db, volume, progress=TerminalProgress(out),
                                 on_session=links, on_recorded=recorded)
        finally:
            if links is not None:
                links.wait()  # the copy is over: waiting costs it nothing
            if stream is not None:
                stream.close()
        job = JobResult(ingest)
        if cfg.archive.archive_dir is not None:  # the second copy before anything else
            from ghostroll.archive.receipt import archive_after_card
            job.archive = archive_after_card(cfg, db, ingest)
        todo = pending(db, cfg)
        if todo.process:
            job.processed = process_pending(cfg, db, out, stream.ready if stream else None)
        if not cfg.s3.enabled:
            job.publish_note = ("sessions stay local: no bucket configured (s3_bucket); "
                                "`ghostroll publish SESSION` publishes one later")
        elif publish:
            if todo.publish:
                job.publish = publish_all(cfg, db, out, client=client(),
                                          failed_before=stream.upload_failed if stream else None)
                from ghostroll.archive.receipt import after_publish
                job.archive = after_publish(cfg, db, ingest, job.archive)
        else:
            job.publish_note = "publishing skipped (--no-publish); `ghostroll publish` sends it"
    for line in job.lines():
        out.write(line + "\n")
    return job


class _OneClient:
    """One S3 client per process, made on first use (boto3 is imported only then)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.client: Any = None
        self.lock = threading.Lock()

    def __call__(self) -> Any:
        with self.lock:
            if self.client is None:
                from ghostroll.publish.s3client import make_client
                self.client = make_client(self.cfg.s3)
            return self.client


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
