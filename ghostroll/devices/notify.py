"""systemd service notifications (sd_notify) behind one small object.

`Notifier()` reads `NOTIFY_SOCKET`; without it every method does nothing and returns
False (running by hand, in tests, under another supervisor). Messages are datagrams of
`KEY=value` lines sent to that AF_UNIX socket: a path, or `@name` for the abstract
namespace. Pure Python (no systemd-python needed): the protocol is one `sendto()`.

The service sends `ready()` once initialised, `status(text)` on each state change,
`watchdog()` from its main loop at least every `watchdog_interval() / 2` seconds (tied
to the loop, not to panel health) and `stopping()` on the way out. A failed send is
logged once and never raises: notification must not take the service down.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def socket_address(value: str) -> str | bytes:
    """`@name` means the abstract namespace (a leading NUL byte)."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address: str | None = env.get("NOTIFY_SOCKET") or None
        self._env = dict(env)
        self._sock: socket.socket | None = None
        self._warned = False
        if self.address is not None and not self.address.startswith(("/", "@")):
            log.warning("NOTIFY_SOCKET %r is neither a path nor @abstract; not notifying",
                        self.address)
            self.address = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send `KEY=value` lines (keyword names are the keys). True when sent."""
        if self.address is None:
            return False
        lines = [f"{key}={_one_line(str(value))}" for key, value in fields.items()]
        data = ("\n".join(lines) + "\n").encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(data, socket_address(self.address))
        except OSError as exc:
            if not self._warned:
                log.warning("sd_notify to %s failed: %s", self.address, exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        if status is None:
            return self.notify(READY=1)
        return self.notify(READY=1, STATUS=status)

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text)

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG=1)

    def stopping(self, status: str | None = None) -> bool:
        if status is None:
            return self.notify(STOPPING=1)
        return self.notify(STOPPING=1, STATUS=status)

    def watchdog_interval(self) -> float | None:
        """The watchdog period in seconds from WATCHDOG_USEC (None: no watchdog, or it
        is meant for another process per WATCHDOG_PID). Ping at half this period."""
        usec = self._env.get("WATCHDOG_USEC", "")
        pid = self._env.get("WATCHDOG_PID", "")
        if not usec.isdigit() or int(usec) == 0:
            return None
        if pid and (not pid.isdigit() or int(pid) != os.getpid()):
            return None
        return int(usec) / 1_000_000

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(text: str) -> str:
    # a newline would start another KEY=value assignment
    return " ".join(text.splitlines())
