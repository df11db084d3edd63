"""Showing ingest progress to a person: a live bar on a terminal, plain lines otherwise.

The formatting is pure (`bar_line`, `plain_line`, `summary_lines`); `TerminalProgress`
only decides when to write (time is injected)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from ghostroll.card.ingest import IngestProgress, IngestResult


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def eta_seconds(p: IngestProgress) -> float | None:
    if p.bytes_read <= 0 or p.elapsed_s <= 0.5 or p.bytes_to_read <= p.bytes_read:
        return None
    rate = p.bytes_read / p.elapsed_s
    return (p.bytes_to_read - p.bytes_read) / rate


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def bar_line(p: IngestProgress, width: int = 24) -> str:
    fraction = p.bytes_read / p.bytes_to_read if p.bytes_to_read else 1.0
    filled = int(width * min(1.0, fraction))
    rate = p.bytes_read / p.elapsed_s if p.elapsed_s > 0 else 0
    return (f"[{'#' * filled}{'.' * (width - filled)}] {p.files_read}/{p.files_to_read} files "
            f"{human_bytes(p.bytes_read)}/{human_bytes(p.bytes_to_read)} "
            f"{human_bytes(rate)}/s ETA {_clock(eta_seconds(p))}")


def plain_line(p: IngestProgress) -> str:
    return (f"copying: {p.files_read}/{p.files_to_read} files, "
            f"{human_bytes(p.bytes_read)} of {human_bytes(p.bytes_to_read)}, "
            f"{p.new} new, {p.duplicates + p.known} already safe, {p.failed} failed, "
            f"ETA {_clock(eta_seconds(p))}")


def summary_lines(r: IngestResult) -> list[str]:
    lines = [
        f"card {r.volume.label or r.volume.id}: {r.discovered} files discovered, "
        f"{r.new} new, {r.skipped} already safe, {r.failed} failed",
        f"{human_bytes(r.bytes_new)} copied and hash-verified in {r.seconds:.1f} s"
        + (f" ({human_bytes(r.bytes_new / r.seconds)}/s)" if r.seconds > 0 and r.new else ""),
    ]
    if r.junk:
        lines.append(f"{r.junk} OS junk files ignored (._*, .Trashes, ...)")
    if r.session is not None:
        lines.append(f"session {r.session.id} in {r.session.path}")
    elif not r.errors and r.complete:
        lines.append("nothing new on this card: no session created")
    if r.card_error:
        lines.append(f"STOPPED: {r.card_error}")
    if r.disk_full:
        lines.append(f"STOPPED: {r.disk_full}")
    if r.cancelled:
        lines.append("cancelled: verified files are kept; insert the card again to continue")
    lines.extend(f"error: {e}" for e in r.errors)
    return lines


class TerminalProgress:
    """Callable progress sink: redraws a bar on a tty, prints a line every few seconds
    otherwise."""

    def __init__(self, out: TextIO, tty: bool | None = None, interval_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.interval = 0.2 if self.tty else interval_s
        self.clock = clock
        self.last = float("-inf")
        self.finished_shown = False

    def __call__(self, p: IngestProgress) -> None:
        if p.phase != "copying" or not p.files_to_read:
            if p.phase == "done" and self.tty:
                self.out.write("\n")
            return
        now = self.clock()
        finished = p.files_read >= p.files_to_read
        if finished and self.finished_shown:
            return
        if now - self.last < self.interval and not finished:
            return
        self.last = now
        self.finished_shown = finished
        if self.tty:
            self.out.write("\r" + bar_line(p) + "\x1b[K")
        else:
            self.out.write(plain_line(p) + "\n")
        self.out.flush()
