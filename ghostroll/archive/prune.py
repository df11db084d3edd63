"""`prune = "archived"`: keep the device's own disk from filling, only with copies elsewhere.

When less than `prune_keep_free_mb` is free, the local originals of the oldest finished
sessions (processed or published, not waiting to be published, not set aside) are
removed, a whole session at a time, but only those whose content has `prune_min_copies`
verified copies outside this device; an archive-disk copy counts only if it is there
with its size right now. Derivatives (share images, thumbnails, share.zip: what live
links serve) are never removed. A pruned original stays a fact: its `local` copy row
turns `pruned` before the file goes, so `ghostroll verify` knows where the content is.
With `prune = "off"` (the default) nothing is ever deleted."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ghostroll.archive.disk import size_on_disk
from ghostroll.config import Config
from ghostroll.storage import db as dbm
from ghostroll.storage.db import CopyRow, Database, SessionRow


@dataclass(frozen=True)
class Prunable:
    session_id: str
    sha256: str
    target: str
    size: int


@dataclass
class PruneResult:
    files: int = 0
    bytes_freed: int = 0
    sessions: list[str] = field(default_factory=list)


def outside_counts(copies: Iterable[CopyRow], present: Iterable[str]) -> Counter[str]:
    """Verified copies per content outside the device; `present` are the archive-disk
    targets found on disk with their size (others do not count)."""
    here = set(present)
    count: Counter[str] = Counter()
    for c in copies:
        if c.state != dbm.COPY_VERIFIED or c.location == dbm.LOCAL:
            continue
        if c.location == dbm.ARCHIVE_DISK and c.target not in here:
            continue
        count[c.sha256] += 1
    return count


def plan_prune(sessions: list[SessionRow], local: list[CopyRow], outside: Counter[str],
               busy: set[str], need_bytes: int, min_copies: int) -> list[Prunable]:
    """Which local originals to remove, oldest session first, until `need_bytes` are
    freed (pure)."""
    if need_bytes <= 0:
        return []
    chosen: list[Prunable] = []
    freed = 0
    for session in sorted(sessions, key=lambda s: s.number):
        if freed >= need_bytes:
            break
        if session.state not in (dbm.PROCESSED, dbm.PUBLISHED) or session.process_error \
                or session.id in busy:
            continue
        root = str(session.path).rstrip("/") + "/"
        for copy in local:
            if copy.state == dbm.COPY_VERIFIED and copy.target.startswith(root) \
                    and outside[copy.sha256] >= min_copies:
                chosen.append(Prunable(session.id, copy.sha256, copy.target, copy.size))
                freed += copy.size
    return chosen


def prune(cfg: Config, db: Database) -> PruneResult:
    result = PruneResult()
    if cfg.archive.prune != "archived":
        return result
    free = shutil.disk_usage(cfg.storage.base_dir).free
    copies = db.copies()
    present = [c.target for c in copies if c.location == dbm.ARCHIVE_DISK
               and c.state == dbm.COPY_VERIFIED and size_on_disk(c.target) == c.size]
    plan = plan_prune(db.sessions(), [c for c in copies if c.location == dbm.LOCAL],
                      outside_counts(copies, present), set(db.queued_sessions()),
                      (cfg.archive.prune_keep_free_mb << 20) - free,
                      cfg.archive.prune_min_copies)
    for item in plan:
        # recorded first: a kill before the unlink leaves a file verify knows is pruned
        db.record_copy(item.sha256, dbm.LOCAL, item.target, item.size, dbm.COPY_PRUNED)
        Path(item.target).unlink(missing_ok=True)
        result.files += 1
        result.bytes_freed += item.size
        if item.session_id not in result.sessions:
            result.sessions.append(item.session_id)
    return result
