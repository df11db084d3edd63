"""PiSugar battery: our own small client for pisugar-server's TCP text protocol.

pisugar-server (PiSugar/pisugar-power-manager-rs) listens on 127.0.0.1:8423. Requests
are lines like `get battery`; a reply echoes the name: `battery: 87.5` (a float printed
by Rust: `100`, not `100.0`), `battery_charging: true`, `battery_power_plugged: false`,
`model: PiSugar 3`. A failed read comes back as `battery: <error text>` (newer
servers) or `Invalid request.` (older ones); button taps (`single`, `double`, `long`)
are pushed to every connection as bare lines at any time. So a reply is found by its
`name:` prefix and every other line is skipped.

The PyPI `pisugar` package (0.1.1) is not used: its unix-socket helper returns nothing
and its event thread busy-loops once the socket closes (see docs/devices.md).

`BatteryMonitor` polls on its own thread with a timeout on every step, reconnects with
exponential backoff, and publishes `BatteryReading`s (or None: no battery known) to a
callback. Callers never wait on the server; no server means no battery shown.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ghostroll.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "127.0.0.1:8423"
TAP_EVENTS = frozenset({"single", "double", "long"})
MAX_LINE = 4096  # bytes; a longer run without a newline is garbage


@dataclass(frozen=True)
class BatteryReading:
    percent: float  # 0..100
    charging: bool | None  # None: the server could not tell
    plugged: bool | None  # external power present
    model: str | None  # e.g. "PiSugar 3"
    at: float  # time.time() of the reading

    def same_values(self, other: BatteryReading | None) -> bool:
        return other is not None and (self.percent, self.charging, self.plugged,
                                      self.model) == (other.percent, other.charging,
                                                      other.plugged, other.model)


class PiSugarProtocolError(ConnectionError):
    """The server sent something we cannot use as the reply to our request."""


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"pisugar_address must be HOST:PORT (e.g. {DEFAULT_ADDRESS}), "
                          f"got {text!r}")
    return host.strip("[]"), int(port)


def reply_value(line: str, name: str) -> str | None:
    """The value of `line` when it is the reply for `name`, else None."""
    prefix = name + ":"
    if line.startswith(prefix):
        return line[len(prefix):].strip()
    return None


def parse_percent(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return min(100.0, max(0.0, value))


def parse_bool(text: str) -> bool | None:
    return {"true": True, "false": False}.get(text.strip().lower())


class PiSugarConnection:
    """One TCP connection; `get(name)` sends `get NAME` and returns the reply text.
    Every step has a deadline; errors raise OSError subclasses (TimeoutError,
    ConnectionError, PiSugarProtocolError)."""

    def __init__(self, host: str, port: int, timeout: float = 2.0) -> None:
        self.timeout = timeout
        self.skipped: list[str] = []  # event and garbage lines seen, newest last (capped)
        self._buf = b""
        self._sock = socket.create_connection((host, port), timeout=timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    def get(self, name: str) -> str:
        self._sock.settimeout(self.timeout)
        self._sock.sendall(f"get {name}\n".encode())
        deadline = time.monotonic() + self.timeout
        while True:
            line = self._read_line(deadline)
            value = reply_value(line, name)
            if value is not None:
                return value
            if line.strip() == "Invalid request.":
                raise PiSugarProtocolError(f"pisugar-server refused 'get {name}'")
            self._skip(line)

    def _skip(self, line: str) -> None:
        if line.strip() not in TAP_EVENTS and line.strip():
            log.debug("pisugar: ignoring unexpected line %r", line[:80])
        self.skipped = [*self.skipped[-31:], line]

    def _read_line(self, deadline: float) -> str:
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"pisugar-server did not answer within {self.timeout:g} s")
            self._sock.settimeout(remaining)
            data = self._sock.recv(4096)
            if not data:
                raise ConnectionError("pisugar-server closed the connection")
            self._buf += data
            if len(self._buf) > MAX_LINE and b"\n" not in self._buf:
                self._skip(self._buf[:80].decode("utf-8", "replace"))
                self._buf = b""
        raw, self._buf = self._buf.split(b"\n", 1)
        return raw.decode("utf-8", "replace").rstrip("\r")


class BatteryMonitor:
    """Polls pisugar-server every `interval` seconds on its own thread and calls
    `on_reading(reading_or_None)` from that thread: after every good poll, and once
    with None when the battery becomes unknown (server gone, unreadable level)."""

    def __init__(self, address: str = DEFAULT_ADDRESS,
                 on_reading: Callable[[BatteryReading | None], None] | None = None, *,
                 interval: float = 10.0, timeout: float = 2.0,
                 backoff_initial: float = 1.0, backoff_max: float = 60.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.host, self.port = parse_address(address)
        self.on_reading = on_reading
        self.interval = interval
        self.timeout = timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: BatteryReading | None = None
        self._published_none = False
        self._conn: PiSugarConnection | None = None
        self._model: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pisugar", daemon=True)
        self.connects = 0  # successful connections, for tests and `doctor`
        self.failures = 0  # failed polls
        self.last_error: str | None = None

    @property
    def latest(self) -> BatteryReading | None:
        with self._lock:
            return self._latest

    def start(self) -> BatteryMonitor:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._disconnect()

    def poll(self) -> BatteryReading | None:
        """One poll on the monitor's connection (connecting first if needed). Raises
        OSError when the server is unreachable or misbehaves; None when it answers
        but has no usable level."""
        if self._conn is None:
            self._conn = PiSugarConnection(self.host, self.port, self.timeout)
            self.connects += 1
            self._model = self._optional(self._conn, "model")
            log.info("pisugar: connected to %s:%d (%s)", self.host, self.port,
                     self._model or "model unknown")
        conn = self._conn
        percent = self._optional(conn, "battery")
        level = parse_percent(percent) if percent is not None else None
        if level is None:
            log.warning("pisugar: unusable battery level %r", percent)
            return None
        charging = self._optional(conn, "battery_charging")
        plugged = self._optional(conn, "battery_power_plugged")
        return BatteryReading(
            percent=level,
            charging=parse_bool(charging) if charging is not None else None,
            plugged=parse_bool(plugged) if plugged is not None else None,
            model=self._model,
            at=self._clock(),
        )

    @staticmethod
    def _optional(conn: PiSugarConnection, name: str) -> str | None:
        try:
            return conn.get(name)
        except PiSugarProtocolError:
            return None

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _publish(self, reading: BatteryReading | None) -> None:
        with self._lock:
            self._latest = reading
        if reading is None:
            if self._published_none:
                return
            self._published_none = True
        else:
            self._published_none = False
        if self.on_reading is not None:
            try:
                self.on_reading(reading)
            except Exception:
                log.exception("pisugar: reading callback failed")

    def _run(self) -> None:
        delay = self.backoff_initial
        while not self._stop.is_set():
            try:
                reading = self.poll()
            except OSError as exc:
                self._disconnect()
                self.failures += 1
                message = f"{type(exc).__name__}: {exc}"
                if message != self.last_error:
                    log.info("pisugar: no battery reading from %s:%d (%s); retrying",
                             self.host, self.port, message)
                self.last_error = message
                self._publish(None)
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            self.last_error = None
            delay = self.backoff_initial
            self._publish(reading)
            self._stop.wait(self.interval)
