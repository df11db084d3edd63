"""Originals the card worker announces (`protocol.Recorded`), passed on to the stdin of
the service's work child (`ghostroll work --stream`), which derives and uploads them while
the card is still read. One feed per card: it ends with the worker's done/failed (or its
socket closing); the child then processes and publishes as usual.

Only an early start: a line that cannot be written now (no streaming child yet, a full
pipe, a child gone) is dropped or kept for the next child, never waited for: the service
loop must not block, and processing derives whatever the stream did not."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import threading
from typing import IO

from ghostroll.appliance import protocol as p

MAX_BUFFERED = 4096  # lines kept while no streaming child has started yet


class WorkFeed:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lines: list[bytes] = []
        self.pipe: IO[bytes] | None = None
        self.active = False  # a streaming child is wanted or running for this card
        self.ended = False

    def recorded(self, message: p.Recorded) -> bool:
        """Queue one announcement; True when a streaming child must be started."""
        line = p.encode(message)
        with self.lock:
            next_card = self.ended  # the last card's child may still be finishing
            start = not self.active or next_card
            self.active = True
            self.ended = False
            if self.pipe is not None:
                self._write(line)
            elif len(self.lines) < MAX_BUFFERED:
                self.lines.append(line)
            return start

    def end(self) -> None:
        """The card's copy is over: the child's input ends."""
        with self.lock:
            self.ended = True
            self._close()

    def attach(self, pipe: IO[bytes]) -> None:
        """A streaming child started: it gets what was announced so far."""
        fd = pipe.fileno()
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        with self.lock:
            self.pipe = pipe
            for line in self.lines:
                self._write(line)
            self.lines = []
            if self.ended:
                self._close()

    def detach(self) -> None:
        """The streaming child exited. Lines of a next card that came meanwhile wait for
        the next child (the work loop runs again: `recorded` asked for it)."""
        with self.lock:
            self._close()
            self.active = bool(self.lines)

    def _write(self, line: bytes) -> None:
        assert self.pipe is not None
        if len(line) > select.PIPE_BUF:
            return  # not atomic on a pipe: a torn line would garble the next one
        with contextlib.suppress(OSError):  # full (EAGAIN) or gone (EPIPE): dropped
            os.write(self.pipe.fileno(), line)

    def _close(self) -> None:
        if self.pipe is not None:
            with contextlib.suppress(OSError):
                self.pipe.close()
            self.pipe = None
