"""The terminal during `ghostroll run`: log lines go above the progress bar instead of
through it, the last progress line agrees with the summary, and `run` and `sessions`
count "already safe" the same way."""

from __future__ import annotations

import io
import logging
import re
import shutil
from pathlib import Path

from ghostroll.appliance.protocol import Progress
from ghostroll.card.progress import TerminalProgress, summary_lines
from ghostroll.commands.sessions import session_counts
from ghostroll.devtools.synthetic import make_demo_card
from ghostroll.storage.db import Database
from tests.support.ingest import ingest, make_config


class FakeTerminal(io.StringIO):
    """One screen shared by stdout and stderr, as on a terminal."""

    def isatty(self) -> bool:
        return True

    def screen(self) -> list[str]:
        """The lines a person sees: \\r returns to the line start, ESC[K erases to its
        end, \\n starts a new line."""
        lines, line, col = [], "", 0
        for token in re.findall(r"\x1b\[K|\r|\n|[^\r\n\x1b]+", self.getvalue()):
            if token == "\n":
                lines.append(line)
                line, col = "", 0
            elif token == "\r":
                col = 0
            elif token == "\x1b[K":
                line = line[:col]
            else:
                line = line[:col] + token + line[col + len(token):]
                col += len(token)
        return lines + ([line] if line else [])


def copying(read: int, new: int) -> Progress:
    return Progress(phase="copying", files_total=4, files_to_read=4, files_read=read,
                          bytes_to_read=4000, bytes_read=read * 1000, new=new,
                          elapsed_s=1.0)


def test_log_lines_go_above_the_bar_and_the_last_line_has_the_final_counts() -> None:
    terminal = FakeTerminal()
    handler = logging.StreamHandler(terminal)
    logger = logging.getLogger("ghostroll")
    logger.addHandler(handler)
    try:
        bar = TerminalProgress(terminal, clock=iter(range(0, 100, 10)).__next__)
        bar(copying(1, 0))
        logger.warning("session shoot-1 created for card CARD")
        bar(copying(4, 2))
        logger.warning("IMG_0004.JPG stored as IMG_0004~2.JPG")
        bar(Progress(phase="done", files_total=4, files_to_read=4, files_read=4,
                           bytes_to_read=4000, bytes_read=4000, new=3, duplicates=1,
                           elapsed_s=2.0))
        logger.warning("after the bar")
    finally:
        logger.removeHandler(handler)
    screen = terminal.screen()
    assert screen[0] == "session shoot-1 created for card CARD"
    assert screen[1] == "IMG_0004.JPG stored as IMG_0004~2.JPG"
    assert screen[2].startswith("[########################] 4/4 files")
    assert screen[3] == "after the bar"  # the handler has its own stream back
    assert handler.stream is terminal


def test_plain_lines_end_with_the_counts_the_summary_prints(tmp_path: Path) -> None:
    card = make_demo_card(tmp_path / "card", photos=3)
    dcim = card / "DCIM" / "100GHOST"
    shutil.copy2(dcim / "IMG_0001.JPG", dcim / "IMG_0001_COPY.JPG")
    out = io.StringIO()
    result = ingest(card, make_config(tmp_path), progress=TerminalProgress(out, tty=False))
    last = out.getvalue().splitlines()[-1]
    assert f"{result.new} new, {result.skipped} already safe, 0 failed" in last
    assert f"{result.new} new, {result.skipped} already safe" in summary_lines(result)[0]


def test_run_and_sessions_agree_on_already_safe(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    first = make_demo_card(tmp_path / "one", photos=1)
    ingest(first, cfg, volume_id="fat:1111-1111")
    # another card: its first file (by name) holds content already safe, read before
    # the first new file creates the session
    second = make_demo_card(tmp_path / "two", photos=2, seed=8)
    old = first / "DCIM" / "100GHOST" / "IMG_0001.JPG"
    target = second / "DCIM" / "000FIRST" / "A_0001.JPG"
    target.parent.mkdir(parents=True)
    shutil.copy2(old, target)
    result = ingest(second, cfg, volume_id="fat:2222-2222")
    assert result.duplicates >= 1 and result.session is not None
    with Database(cfg.storage.db_path) as db:
        counts = session_counts(db, result.session.id)
    assert counts["verified"] == result.new
    assert counts["duplicate"] == result.skipped
