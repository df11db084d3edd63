"""`--read-data`: re-hash every disk copy against its sha256, resumable through a
`Checkpoint`."""


from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ghostroll import faults
from ghostroll.commands.verify.model import (
    COPY_DAMAGED,
    COPY_UNREADABLE,
    HashProgress,
    Options,
    Problem,
    Report,
)
from ghostroll.commands.verify.rules import session_of
from ghostroll.config import Config
from ghostroll.hashing import sha256_file
from ghostroll.storage.db import CopyRow


class Checkpoint:
    """Which disk copies this `--read-data` pass has re-hashed already, one line each, so
    an interrupted pass continues where it stopped. Removed when a pass completes."""

    def __init__(self, path: Path, scope: str, restart: bool) -> None:
        self.path, self.scope = path, scope
        self.done: set[str] = set() if restart else self._load()
        self._file: Any = None

    def _load(self) -> set[str]:
        try:
            header, *lines = self.path.read_text(encoding="utf-8",
                                                 errors="surrogateescape").splitlines()
        except (OSError, ValueError):
            return set()
        try:
            if json.loads(header).get("scope") != self.scope:
                return set()
        except (ValueError, AttributeError):
            return set()
        return set(lines)

    @staticmethod
    def key(copy: CopyRow) -> str:
        return f"{copy.sha256}\t{copy.location}\t{copy.target}"

    def add(self, copy: CopyRow) -> None:
        if self._file is None:
            fresh = not self.done
            self._file = open(self.path, "w" if fresh else "a", encoding="utf-8",  # noqa: SIM115
                              errors="surrogateescape")
            os.chmod(self.path, 0o600)
            if fresh:
                self._file.write(json.dumps({"scope": self.scope}) + "\n")
        self._file.write(self.key(copy) + "\n")
        self._file.flush()
        self.done.add(self.key(copy))

    def finish(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def checkpoint_path(cfg: Config) -> Path:
    return cfg.storage.db_path.with_name(cfg.storage.db_path.name + ".verify-read")


def check_data(cfg: Config, report: Report, intact: list[CopyRow], roots: dict[str, str],
               options: Options, progress: HashProgress | None) -> None:
    """Re-hash every intact disk copy not yet re-hashed in this pass."""
    scope = options.session.id if options.session else "all"
    checkpoint = Checkpoint(checkpoint_path(cfg), scope, options.restart)
    todo = [c for c in intact if Checkpoint.key(c) not in checkpoint.done]
    report.checked["hash_resumed"] += len(intact) - len(todo)
    total = sum(c.size for c in todo)
    tally = {"copies": 0, "bytes": 0}

    def on_bytes(n: int) -> None:
        tally["bytes"] += n
        if progress is not None:
            progress(tally["copies"], len(todo), tally["bytes"], total)

    try:
        for copy in todo:
            try:
                faults.fault("verify.read")
                digest = sha256_file(Path(copy.target), from_disk=True, on_bytes=on_bytes)
            except OSError as exc:
                report.problems.append(Problem(
                    COPY_UNREADABLE, session_of(copy.target, roots), copy.target,
                    f"cannot read the {copy.location} copy: {exc}", "check the disk "
                    "(dmesg); copy the file back from a backup or its card"))
                continue
            report.checked["hashed"] += 1
            report.checked["hashed_bytes"] += copy.size
            if digest != copy.sha256:
                report.problems.append(Problem(
                    COPY_DAMAGED, session_of(copy.target, roots), copy.target,
                    f"the {copy.location} copy no longer matches its sha256 (read "
                    f"{digest[:12]}…, verified {copy.sha256[:12]}…): its bytes changed on "
                    "disk", f"copy the file back from a backup or from its card to "
                    f"{copy.target}, then run `ghostroll verify --read-data` again"))
            else:
                checkpoint.add(copy)
            tally["copies"] += 1
            on_bytes(0)
    except BaseException:
        checkpoint.close()
        raise
    checkpoint.finish()


