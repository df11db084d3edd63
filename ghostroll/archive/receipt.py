"""After a card: archive what is pending and say how many copies the card's photos have
("2 copies ✓ · safe to format" / "1 copy · safe to remove"), for `ghostroll run`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from ghostroll.archive import layout
from ghostroll.archive.disk import ArchiveResult, archive_pending
from ghostroll.archive.prune import PruneResult, prune
from ghostroll.card.ingest import IngestResult
from ghostroll.card.progress import human_bytes
from ghostroll.config import Config
from ghostroll.errors import ArchiveError
from ghostroll.storage.db import Database

log = logging.getLogger("ghostroll.archive")


@dataclass(frozen=True)
class ArchiveOutcome:
    root: Path | None  # None: the bucket is the only archive target
    result: ArchiveResult | None
    error: str | None
    copies: int | None  # the card's copy count; None when the card phase did not finish
    pruned: PruneResult | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None or bool(self.result and self.result.problems)

    def lines(self) -> list[str]:
        lines: list[str] = []
        if self.result is not None:
            r = self.result
            if r.copied or r.problems:
                lines.append(f"archive {r.root}: {r.copied} original"
                             f"{'' if r.copied == 1 else 's'} copied and verified "
                             f"({human_bytes(r.bytes_copied)}), {r.already} already there")
            else:
                lines.append(f"archive {r.root}: up to date")
            lines.extend(f"archive: not archived: {p}" for p in r.problems)
        if self.error is not None:
            lines.append(f"archive: {self.error}")
        if self.pruned is not None and self.pruned.files:
            p = self.pruned
            lines.append(f"pruned {p.files} local original(s) of {len(p.sessions)} oldest "
                         f"session(s) ({human_bytes(p.bytes_freed)} freed): each has its "
                         "copies elsewhere, galleries kept")
        if self.copies is not None:
            lines.append(layout.receipt(self.copies))
        return lines


def after_publish(cfg: Config, db: Database, ingest: IngestResult,
                  outcome: ArchiveOutcome | None) -> ArchiveOutcome | None:
    """Record the originals the bucket now holds (the bucket target), and count the card's
    copies again with them."""
    from ghostroll.archive.bucket import record_bucket_copies

    if not record_bucket_copies(cfg, db) and outcome is None:
        return None
    seen = ingest.complete and not ingest.failed and db.seen_on_volume(ingest.volume.id)
    copies = card_copies(db, ingest.volume.id) if seen else None
    if outcome is None:
        return ArchiveOutcome(None, None, None, copies)
    return replace(outcome, copies=copies)


def card_copies(db: Database, volume_id: str) -> int:
    """The copy count of a card: the fewest verified copies any content seen on it has."""
    return copies_of(db, (row.sha256 for row in db.seen_on_volume(volume_id).values()))


def session_copy_count(db: Database, session_id: str) -> int | None:
    """The receipt's number for one session; None when it holds no content."""
    shas, copies = db.session_copies(session_id)
    return layout.copies_held(shas, copies) if shas else None


def copies_of(db: Database, shas: Iterable[str]) -> int:
    return layout.copies_held(shas, db.copies())


def archive_after_card(cfg: Config, db: Database, ingest: IngestResult) -> ArchiveOutcome:
    root = cfg.archive.archive_dir
    assert root is not None
    result, error = None, None
    try:
        result = archive_pending(db, root, cfg.storage.base_dir)
    except ArchiveError as exc:
        error = str(exc)
        log.warning("archive: %s", exc)
    pruned = prune(cfg, db)
    seen = ingest.complete and not ingest.failed and db.seen_on_volume(ingest.volume.id)
    copies = card_copies(db, ingest.volume.id) if seen else None
    return ArchiveOutcome(root, result, error, copies, pruned)
