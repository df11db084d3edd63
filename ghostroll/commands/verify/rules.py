"""Pure decisions of verify: which session holds a path, what is wrong with a disk copy,
which derivatives and objects a processed session must have."""


from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ghostroll.commands.verify.model import (
    COPY_MISSING,
    COPY_SIZE,
    COPY_UNREADABLE,
    Problem,
    Report,
)
from ghostroll.storage.db import CopyRow


def session_of(target: str, roots: dict[str, str]) -> str | None:
    """The session whose folder holds `target` (a recorded path), if any; `roots` maps
    session folders to session ids."""
    parent, path = os.path.dirname(target), target
    while parent != path:
        if parent in roots:
            return roots[parent]
        parent, path = os.path.dirname(parent), parent
    return None


def disk_copy_problem(copy: CopyRow, size: int | None, error: str | None,
                      session: str | None, only_copy: bool) -> Problem | None:
    """What is wrong with a disk copy found with `size` bytes (None: not there) or that
    could not be looked at (`error`)."""
    lost = (" It was the only verified copy of this content: the photo is lost here "
            "unless a backup or the card still has it.") if only_copy else ""
    fix = (f"copy the file back from a backup or from its card to {copy.target} (same "
           "name), then run `ghostroll verify --read-data` to prove it by its hash")
    if error is not None:
        return Problem(COPY_UNREADABLE, session, copy.target, f"cannot look at the recorded "
                       f"{copy.location} copy: {error}", "check the disk and its permissions "
                       "(dmesg, ls -l), then run `ghostroll verify` again")
    if size is None:
        return Problem(COPY_MISSING, session, copy.target,
                       f"recorded {copy.location} copy is missing.{lost}", fix)
    if size != copy.size:
        return Problem(COPY_SIZE, session, copy.target, f"recorded {copy.location} copy has "
                       f"{size} bytes, {copy.size} were verified: it was changed or "
                       f"truncated.{lost}", fix)
    return None


def missing_derived(items: list[dict[str, Any]], zip_key: str | None,
                    exists: Callable[[str], bool]) -> list[str]:
    """Gallery keys (thumbs/…, share/…, share.zip) of a processed session not on disk."""
    keys = [item[k] for item in items for k in ("share", "thumb", "motion") if item.get(k)]
    if zip_key:
        keys.append(zip_key)
    return [k for k in keys if not exists(k)]


def expected_objects(items: list[dict[str, Any]], zip_key: str | None) -> list[str]:
    """Keys (under the session's prefix) that a published session has in its bucket."""
    keys = ["index.html", "progress.json"]
    keys += [item[k] for item in items for k in ("thumb", "share", "motion") if item.get(k)]
    if zip_key:
        keys.append(zip_key)
    return keys


def summary_line(report: Report) -> str:
    c = report.checked
    return (f"verify: {c['copies']} copies of {c['contents']} contents checked, "
            f"{len(report.problems)} problem{'s' if len(report.problems) != 1 else ''}")
