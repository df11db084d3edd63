"""`ghostroll watch` for a laptop or desktop: wait for a card, run the job once, wait
for the card to go away.

It only lists folders and reads the card; it never writes to it (the original wrote a
probe file on every poll). Quiet when idle: a line when a card appears, when its job
ends and when it is removed, nothing per poll. A mounted card with DCIM/ whose label is
not `sd_label` (formatting in the camera resets the label) is not ingested, but said
once per insertion, with the way out: `sd_label = "*"` takes any card with DCIM/."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ghostroll.config import Config
from ghostroll.exitcodes import ExitCode

log = logging.getLogger("ghostroll.watch")


def mount_roots(spec: str, env: dict[str, str] | None = None) -> list[Path]:
    """Comma-separated roots with $USER (and other variables) expanded."""
    env = dict(os.environ if env is None else env)
    env.setdefault("USER", os.environ.get("USER", ""))
    roots = []
    for part in spec.split(","):
        text = part.strip()
        for name, value in env.items():
            text = text.replace(f"${name}", value).replace(f"${{{name}}}", value)
        if text:
            roots.append(Path(text))
    return roots


ANY_LABEL = "*"


def matches_label(name: str, label: str) -> bool:
    """`auto-import`, and macOS's `auto-import 1` for a second volume of the same name;
    `*` matches every name."""
    if name == label or label == ANY_LABEL:
        return True
    head, _, tail = name.rpartition(" ")
    return head == label and tail.isdigit()


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


def skip_reason(name: str, label: str) -> str:
    return (f"its label {name!r} is not sd_label {label!r} (formatting a card in the "
            f"camera resets the label): rename the card, or set sd_label = \"{ANY_LABEL}\" "
            "to take any card with DCIM/")


def survey(roots: Iterable[Path], label: str,
           is_mount: Callable[[str], bool] = os.path.ismount
           ) -> tuple[list[Path], list[Skipped]]:
    """Mounted volumes holding a DCIM/ folder: those named like `label`, and the others
    with why they are skipped."""
    found, skipped = [], []
    for root in roots:
        try:
            entries = sorted(os.scandir(root), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if not is_mount(entry.path) or not any(
                    os.path.isdir(os.path.join(entry.path, d)) for d in ("DCIM", "dcim")):
                continue
            if matches_label(entry.name, label):
                found.append(Path(entry.path))
            else:
                skipped.append(Skipped(Path(entry.path), skip_reason(entry.name, label)))
    return found, skipped


def find_cards(roots: Iterable[Path], label: str,
               is_mount: Callable[[str], bool] = os.path.ismount) -> list[Path]:
    """Mounted volumes named like `label` that hold a DCIM/ folder."""
    return survey(roots, label, is_mount)[0]


def watch(cfg: Config, handle: Callable[[Path], int], *, once: bool = False,
          is_mount: Callable[[str], bool] = os.path.ismount,
          sleep: Callable[[float], None] = time.sleep,
          should_stop: Callable[[], bool] = lambda: False) -> int:
    """Poll until stopped. Each card is handled once per insertion. With `once`, return
    after the first card's job with its exit code."""
    roots = mount_roots(cfg.card.mount_roots)
    log.info("watching %s for a card labelled %r", ", ".join(map(str, roots)),
             cfg.card.sd_label)
    handled: set[Path] = set()
    told: set[Path] = set()  # skipped cards already reported (once per insertion)
    while not should_stop():
        cards, skipped = survey(roots, cfg.card.sd_label, is_mount)
        present = set(cards)
        for card in skipped:
            if card.path not in told:
                log.warning("card at %s skipped: %s", card.path, card.reason)
        told = {card.path for card in skipped}
        for gone in sorted(handled - present):
            log.info("card at %s removed; waiting for the next one", gone)
        handled &= present
        for card in sorted(present - handled):
            log.info("card found at %s", card)
            code = handle(card)
            handled.add(card)
            log.info("done with %s (exit %d); remove the card when you like", card, code)
            if once:
                return code
        sleep(cfg.card.poll_seconds)
    return ExitCode.OK
