"""Verify's results for people and programs: text, JSON, the last result kept for the
idle screen, the --read-data progress bar."""


from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from ghostroll.card.progress import human_bytes
from ghostroll.commands.verify.model import DATABASE, UNUSABLE, Problem, Report
from ghostroll.commands.verify.rules import summary_line
from ghostroll.config import Config
from ghostroll.storage.session import write_json_atomic


def last_result_path(db_path: Path) -> Path:
    """The last whole-device result, kept next to the database for the idle screen."""
    return db_path.with_name(db_path.name + ".verify.json")


def save_last_result(cfg: Config, report: Report) -> None:
    write_json_atomic(last_result_path(cfg.storage.db_path), _shown_all(report.as_json()),
                      mode=0o640)


def idle_line(result: dict[str, Any]) -> str:
    """What the idle screen says about a saved result ("" when all is well)."""
    count = len(result.get("problems", []))
    if result.get("ok", True) or not count:
        return ""
    return f"verify: {count} problem{'s' if count != 1 else ''} · ssh: ghostroll verify"


def report_text(report: Report) -> str:
    """The checklist for people: general findings, then one entry per session."""
    marks = {True: "✓", False: "✗"}
    found = report.problems + report.warnings
    database_ok = not any(p.kind == DATABASE for p in report.problems)
    lines = [f"{marks[database_ok]} database integrity"]
    lines += _problem_lines([p for p in found if p.session is None], report)
    titles = {s.id: f"{s.id} (#{s.number}, {s.state})" for s in report.sessions}
    for p in found:  # a copy in a session outside --session still gets a heading
        if p.session is not None and p.session not in titles:
            titles[p.session] = p.session
    for sid, title in titles.items():
        mine = [p for p in found if p.session == sid]
        bad = any(p in report.problems for p in mine)
        lines.append(f"{marks[not bad]} {_shown(title)}")
        lines += _problem_lines(mine, report)
    lines += [f"repaired: {line}" for line in report.repaired]
    if report.checked["hash_resumed"]:
        lines.append(f"  ({report.checked['hash_resumed']} copies were re-hashed earlier in "
                     "this pass; `--restart` to start over)")
    lines.append(summary_line(report))
    return "\n".join(lines)


def _problem_lines(problems: list[Problem], report: Report) -> list[str]:
    lines = []
    for p in problems:
        mark = "✗" if p in report.problems else "!"
        lines.append(f"    {mark} {p.kind}: {_shown(p.message)}")
        if p.path:
            lines.append(f"        where: {_shown(p.path)}")
        lines.append(f"        fix: {_shown(p.fix)}")
    return lines


def _shown(text: str) -> str:
    """A file name that is not UTF-8 (kept as surrogate escapes) shown as \\xNN."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def report_json(report: Report) -> str:
    return json.dumps(_shown_all(report.as_json()), indent=2, ensure_ascii=False)


def _shown_all(value: Any) -> Any:
    if isinstance(value, str):
        return _shown(value)
    if isinstance(value, dict):
        return {k: _shown_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown_all(v) for v in value]
    return value


def unusable_json(message: str) -> str:
    """The --json document when there is nothing to check with (exit 2)."""
    problem = Problem(UNUSABLE, None, None, message, "fix the setting or the file named above")
    return json.dumps({"ok": False, "problems": [asdict(problem)], "warnings": [],
                       "checked": {}}, indent=2, ensure_ascii=False)


class HashBar:
    """The --read-data progress bar on a terminal (nothing otherwise)."""

    def __init__(self, out: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.out, self.clock, self.last = out, clock, float("-inf")

    def __call__(self, copies: int, of: int, done: int, total: int) -> None:
        now = self.clock()
        if now - self.last < 0.2 and copies < of:
            return
        self.last = now
        width = 24
        filled = int(width * min(1.0, done / total)) if total else width
        self.out.write(f"\rre-hashing [{'#' * filled}{'.' * (width - filled)}] {copies}/{of} "
                       f"copies {human_bytes(done)}/{human_bytes(total)}\x1b[K")
        if copies >= of:
            self.out.write("\n")
        self.out.flush()
