"""The whole job for one card, as `ghostroll run` does it: card phase, then the
processing of every session whose copy is complete (this card's and any left over from
an earlier run), then publishing (when a bucket is configured)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ghostroll import db as dbm
from ghostroll.config import Config
from ghostroll.db import Database
from ghostroll.ingest import IngestResult, ingest_card
from ghostroll.process import ProcessResult, process_session
from ghostroll.progress import TerminalProgress, summary_lines
from ghostroll.volume import identify

EXIT_OK, EXIT_PARTIAL, EXIT_UNUSABLE, EXIT_QUEUED = 0, 1, 2, 3


@dataclass
class JobResult:
    ingest: IngestResult
    processed: list[ProcessResult] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.ingest.failed or not self.ingest.complete:
            return EXIT_PARTIAL
        return EXIT_OK

    def lines(self) -> list[str]:
        lines = summary_lines(self.ingest)
        for p in self.processed:
            lines.append(f"gallery for {p.session_id}: {_count(p.made, 'photo')}, "
                         f"{_count(p.videos, 'video')}"
                         + (f", {len(p.problems)} could not be shown" if p.problems else ""))
            lines.extend(f"  not shown: {problem}" for problem in p.problems)
            lines.extend(f"  numbering gap: {gap}" for gap in p.info)
        return lines


def process_pending(cfg: Config, db: Database, out: TextIO | None = None) -> list[ProcessResult]:
    """Process every session whose card phase is complete but not yet processed."""
    results = []
    for session in db.sessions():
        if session.state != dbm.COPIED:
            continue
        last = 0.0

        def report(done: int, total: int, sid: str = session.id) -> None:
            nonlocal last
            if out is not None and (time.monotonic() - last > 2 or done == total):
                last = time.monotonic()
                out.write(f"making share images for {sid}: {done}/{total}\n")
                out.flush()

        results.append(process_session(cfg, db, session, progress=report))
    return results


def run_job(path: Path, cfg: Config, volume_id: str | None = None, label: str | None = None,
            out: TextIO = sys.stdout) -> JobResult:
    volume = identify(path, volume_id, label)
    with Database(cfg.storage.db_path) as db:
        ingest = ingest_card(path, cfg, db, volume, progress=TerminalProgress(out))
        job = JobResult(ingest)
        job.processed = process_pending(cfg, db, out)
    for line in job.lines():
        out.write(line + "\n")
    return job


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
