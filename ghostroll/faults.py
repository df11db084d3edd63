"""Test-only fault hooks: named points where a test makes this process die, fail or slow.

Nothing here is a setting: the hooks are driven by two environment variables that only
tests (and the fault campaign) set, and cost one dict lookup when unset.

    GHOSTROLL_FAULT="point[:action][@N],..."   at the Nth pass (default 1) through
        `point`: `kill` (SIGKILL this process, the default), `enospc` or `eio` (raise
        that OSError there), `exit` (os._exit(70): dies without cleanup, like kill, but
        visible in the exit code).
    GHOSTROLL_TEST_DELAY_MS="point=ms,..."     sleep at `point` (for `copy.chunk`: per
        MiB copied, so a pulled card lands mid-copy).

Points are stable names that any rewrite of the pipeline keeps:
    copy.chunk      after each chunk written to the temp file
    copy.fsync      before the temp file's fsync
    copy.commit     before the rename into the session
    verify          before a copy is re-read from disk
    db.commit       inside the transaction that records a verified copy, before COMMIT
    derive          before one file's share image is written
    zip             before share.zip is written
    upload          before one object is PUT
    upload.part     before one part of a multipart upload is sent
    publish.index   before the final index is uploaded
    archive.file    before one original is copied to the archive disk
    archive.record  after an archive copy verified, before it is recorded
    verify.read     `ghostroll verify --read-data`: before one copy is re-hashed (its
                    checkpoint lets the next pass continue after a kill)
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time

FAULT_ENV = "GHOSTROLL_FAULT"
DELAY_ENV = "GHOSTROLL_TEST_DELAY_MS"
_ACTIONS = ("kill", "enospc", "eio", "exit")

_lock = threading.Lock()
_hits: dict[str, int] = {}


def _parse_faults(text: str) -> dict[str, tuple[str, int]]:
    faults: dict[str, tuple[str, int]] = {}
    for spec in filter(None, (s.strip() for s in text.split(","))):
        spec, _, nth = spec.partition("@")
        point, _, action = spec.partition(":")
        action = action or "kill"
        if action not in _ACTIONS:
            raise ValueError(f"{FAULT_ENV}: unknown action {action!r} (allowed: {_ACTIONS})")
        faults[point] = (action, int(nth) if nth else 1)
    return faults


def _parse_delays(text: str) -> dict[str, float]:
    delays: dict[str, float] = {}
    for spec in filter(None, (s.strip() for s in text.split(","))):
        point, _, ms = spec.partition("=")
        delays[point] = float(ms) / 1000
    return delays


_faults = _parse_faults(os.environ.get(FAULT_ENV, ""))
_delays = _parse_delays(os.environ.get(DELAY_ENV, ""))


def reload() -> None:
    """Re-read the environment (tests that set it in-process)."""
    global _faults, _delays
    with _lock:
        _faults = _parse_faults(os.environ.get(FAULT_ENV, ""))
        _delays = _parse_delays(os.environ.get(DELAY_ENV, ""))
        _hits.clear()


def fault(point: str) -> None:
    """Pass a named point; does nothing unless a test armed it."""
    if not _faults:
        return
    armed = _faults.get(point)
    if armed is None:
        return
    action, nth = armed
    with _lock:
        _hits[point] = _hits.get(point, 0) + 1
        if _hits[point] != nth:
            return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "exit":
        os._exit(70)
    code = errno.ENOSPC if action == "enospc" else errno.EIO
    raise OSError(code, f"{os.strerror(code)} (test fault at {point})")


def delay(point: str, units: float = 1.0) -> None:
    """Sleep `units` times the delay a test set for `point` (none by default)."""
    if _delays:
        seconds = _delays.get(point, 0.0) * units
        if seconds > 0:
            time.sleep(seconds)


def delay_for(point: str) -> float:
    """The delay in seconds a test set for `point` (0 when none)."""
    return _delays.get(point, 0.0)
