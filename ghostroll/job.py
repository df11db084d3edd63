"""`ghostroll run` and the CLI's processing and publishing, as text: the sequence itself
(card phase with the stream beside it → archive → process → publish) is
`pipeline/flow.py`; this module turns its progress and result into lines."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ghostroll.card.ingest import IngestResult
from ghostroll.card.progress import TerminalProgress, summary_lines
from ghostroll.config import Config
from ghostroll.exitcodes import ExitCode
from ghostroll.pipeline import flow
from ghostroll.pipeline.early import OneClient
from ghostroll.storage.db import Database

if TYPE_CHECKING:
    from ghostroll.archive.receipt import ArchiveOutcome
    from ghostroll.process import ProcessResult, Ready
    from ghostroll.publish.publisher import DrainResult, PublishEvent



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


class TextReport:
    """The pipeline's progress as lines on `out` (None: silent)."""

    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self.last = 0.0

    def processing(self, session_id: str, done: int, total: int) -> None:
        if self.out is not None and (time.monotonic() - self.last > 2 or done == total):
            self.last = time.monotonic()
            self._line(f"making share images for {session_id}: {done}/{total}")

    def publishing(self, event: PublishEvent) -> None:
        if event.stage == "link" and event.link:
            self._line(f"share link for {event.session_id}: {event.link.url}")
        elif event.stage == "uploading":
            self._line(f"uploading {event.session_id}: {event.done}/{event.total}")

    def archived(self, session_ids: list[str]) -> None:
        pass  # `run` says the copy count once, in its summary

    def _line(self, text: str) -> None:
        if self.out is not None:
            self.out.write(text + "\n")
            self.out.flush()


def process_pending(cfg: Config, db: Database, out: TextIO | None = None,
                    ready: Ready | None = None) -> list[ProcessResult]:
    """Process every session whose card phase is complete but not yet processed (see
    `process.process_pending`: set-aside sessions are skipped, a full disk stops)."""
    from ghostroll import process

    return process.process_pending(cfg, db, TextReport(out).processing, ready)


def publish_all(cfg: Config, db: Database, out: TextIO | None,
                only: str | None = None, client: Any | None = None) -> DrainResult:
    from ghostroll.publish.publisher import drain

    return drain(cfg, db, client or OneClient(cfg)(), TextReport(out).publishing, only=only)


def run_job(path: Path, cfg: Config, volume_id: str | None = None, label: str | None = None,
            out: TextIO = sys.stdout, publish: bool = True, events: bool = False) -> JobResult:
    """`events`: the protocol's messages on `out` (as the service reads them), not text."""
    if events:
        from ghostroll.appliance.work import Messages, finished_messages
        from ghostroll.pipeline.events import ThrottledProgress, card_outcome

        messages = Messages(out)
        ingest, done = flow.run_card(path, cfg, messages, ThrottledProgress(messages.send),
                                     volume_id=volume_id, label=label, publish=publish)
        messages.send(card_outcome(ingest))
        for message in finished_messages(cfg, done):
            messages.send(message)
        return JobResult(ingest, done.processed, done.publish, archive=done.archive)
    ingest, done = flow.run_card(path, cfg, TextReport(out), TerminalProgress(out),
                                 volume_id=volume_id, label=label, publish=publish)
    job = JobResult(ingest, done.processed, done.publish, archive=done.archive)
    if not cfg.s3.enabled:
        job.publish_note = ("sessions stay local: no bucket configured (s3_bucket); "
                            "`ghostroll publish SESSION` publishes one later")
    elif not publish:
        job.publish_note = "publishing skipped (--no-publish); `ghostroll publish` sends it"
    for line in job.lines():
        out.write(line + "\n")
    return job


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
