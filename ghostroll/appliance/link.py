"""Both ends of the card socket: `WorkerLink` (the per-card worker's side) and
`CardServer` (the service's side). Framing, threads and timeouts only; what the
messages mean is in protocol.py and the state machine."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from ghostroll.appliance import protocol as p

log = logging.getLogger("ghostroll.link")
SOCKET_NAME = "ghostroll.sock"


def _read_lines(sock: socket.socket):  # type: ignore[no-untyped-def]
    buffer = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:
            return
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line
        if len(buffer) > p.MAX_LINE:
            return


class WorkerLink:
    """The worker's connection to the service. Incoming messages land in `inbox`."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbox: queue.Queue[p.Message | None] = queue.Queue()
        self._lock = threading.Lock()
        self.alive = True
        threading.Thread(target=self._reader, name="ghostroll-link", daemon=True).start()

    @classmethod
    def connect(cls, path: Path, timeout_s: float = 2.0) -> WorkerLink | None:
        """None when no service listens: the worker then copies on its own."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout_s)
        try:
            sock.connect(str(path))
        except OSError as exc:
            sock.close()
            log.info("service socket %s not reachable (%s): copying without it", path, exc)
            return None
        sock.settimeout(None)
        return cls(sock)

    def send(self, message: p.Message) -> bool:
        if not self.alive:
            return False
        try:
            with self._lock:
                self.sock.sendall(p.encode(message))
            return True
        except OSError:
            self.alive = False
            return False

    def _reader(self) -> None:
        for line in _read_lines(self.sock):
            try:
                self.inbox.put(p.decode(line))
            except p.ProtocolError as exc:
                log.warning("ignoring a bad line from the service: %s", exc)
        self.alive = False
        self.inbox.put(None)

    def close(self) -> None:
        self.alive = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@dataclass(frozen=True)
class Incoming:
    """A message from worker `conn`; `message` None means the worker went away."""
    conn: int
    message: p.Message | None


class CardServer:
    """Listens on `<runtime_dir>/ghostroll.sock` (mode 0660); every worker message goes
    to `events` as an Incoming; replies go out with `send(conn, message)`."""

    def __init__(self, path: Path, events: queue.Queue[object], mode: int = 0o660) -> None:
        self.path = path
        self.events = events
        self._conns: dict[int, socket.socket] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        os.chmod(path, mode)
        self.listener.listen(8)
        self._thread = threading.Thread(target=self._accept, name="ghostroll-cards",
                                        daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            conn = next(self._ids)
            with self._lock:
                self._conns[conn] = sock
            threading.Thread(target=self._serve, args=(conn, sock), daemon=True,
                             name=f"ghostroll-card-{conn}").start()

    def _serve(self, conn: int, sock: socket.socket) -> None:
        for line in _read_lines(sock):
            try:
                self.events.put(Incoming(conn, p.decode(line)))
            except p.ProtocolError as exc:
                self.send(conn, p.Error(str(exc)))
        with self._lock:
            self._conns.pop(conn, None)
        sock.close()
        self.events.put(Incoming(conn, None))

    def send(self, conn: int, message: p.Message) -> bool:
        with self._lock:
            sock = self._conns.get(conn)
        if sock is None:
            return False
        try:
            sock.sendall(p.encode(message))
            return True
        except OSError:
            return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        with contextlib.suppress(OSError):
            self.listener.close()
        with self._lock:
            conns, self._conns = list(self._conns.values()), {}
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
