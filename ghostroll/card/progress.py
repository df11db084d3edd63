"""Showing ingest progress to a person: a live bar on a terminal, plain lines otherwise.

The formatting is pure (`bar_line`, `plain_line`, `summary_lines`); `TerminalProgress`
only decides when to write (time is injected). While the bar is on a terminal, log lines
written to a terminal go above it (the bar is cleared, the line written, the bar drawn
again). The last line shown is drawn from the "done" report, whose counts are the ones
the summary prints (new, already safe = read-but-known + recognised without reading)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from ghostroll.appliance.protocol import Progress
from ghostroll.card.ingest import IngestResult


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def eta_seconds(p: Progress) -> float | None:
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


def bar_line(p: Progress, width: int = 24) -> str:
    fraction = p.bytes_read / p.bytes_to_read if p.bytes_to_read else 1.0
    filled = int(width * min(1.0, fraction))
    rate = p.bytes_read / p.elapsed_s if p.elapsed_s > 0 else 0
    return (f"[{'#' * filled}{'.' * (width - filled)}] {p.files_read}/{p.files_to_read} files "
            f"{human_bytes(p.bytes_read)}/{human_bytes(p.bytes_to_read)} "
            f"{human_bytes(rate)}/s ETA {_clock(eta_seconds(p))}")


def plain_line(p: Progress) -> str:
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


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _terminal_log_handlers() -> Iterator[logging.StreamHandler]:  # type: ignore[type-arg]
    """Handlers writing to a terminal (the root's and ghostroll's; files excluded)."""
    for logger in (logging.getLogger(), logging.getLogger("ghostroll")):
        for handler in logger.handlers:
            if (isinstance(handler, logging.StreamHandler)
                    and not isinstance(handler, logging.FileHandler)
                    and _is_tty(handler.stream)):
                yield handler


class _AboveBar:
    """A log handler's stream while the bar is shown: each write goes above the bar."""

    def __init__(self, stream: TextIO, bar: TerminalProgress) -> None:
        self.stream, self.bar = stream, bar

    def write(self, text: str) -> int:
        with self.bar.lock:
            self.bar.clear_line()
            written = self.stream.write(text)
            self.stream.flush()
            self.bar.redraw()
        return written

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


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
        self.shown: Progress | None = None  # the last report shown
        self.line = ""  # the bar as drawn now ("" when none is)
        self.lock = threading.RLock()
        self._moved: list[tuple[logging.StreamHandler, TextIO]] = []  # type: ignore[type-arg]

    def __call__(self, p: Progress) -> None:
        if p.phase == "done":
            self._finish(p)
            return
        if p.phase != "copying" or not p.files_to_read:
            return
        now = self.clock()
        finished = p.files_read >= p.files_to_read
        if finished and self.shown is not None and self.shown.files_read >= p.files_to_read:
            return
        if now - self.last < self.interval and not finished:
            return
        self.last = now
        self._show(p)

    def _show(self, p: Progress) -> None:
        with self.lock:
            self.shown = p
            if self.tty:
                if not self._moved:
                    self._logs_above()
                self.line = bar_line(p)
                self.out.write("\r" + self.line + "\x1b[K")
            else:
                self.out.write(plain_line(p) + "\n")
            self.out.flush()

    def _finish(self, p: Progress) -> None:
        """The last line, from the final counts (verification ends after the last read),
        unless nothing was shown at all (nothing to read)."""
        if self.shown is None:
            return
        if p != self.shown:
            self._show(p)
        with self.lock:
            if self.tty:
                self.out.write("\n")
                self.out.flush()
                self.line = ""
            for handler, stream in self._moved:
                handler.setStream(stream)
            self._moved = []

    def _logs_above(self) -> None:
        for handler in _terminal_log_handlers():
            self._moved.append((handler, handler.stream))
            handler.setStream(_AboveBar(handler.stream, self))  # type: ignore[arg-type]

    def clear_line(self) -> None:
        if self.line:
            self.out.write("\r\x1b[K")
            self.out.flush()

    def redraw(self) -> None:
        if self.line:
            self.out.write(self.line)
            self.out.flush()
