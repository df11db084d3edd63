"""A loopback HTTP proxy in front of a real S3 (SeaweedFS) that misbehaves on purpose.

    proxy = FaultProxy(("127.0.0.1", s3_port), seed=7).start()
    proxy.set_plan(FaultPlan(latency_ms=(0, 300), p_5xx=0.2, burst=3, p_reset=0.1,
                             p_truncate=0.1))
    ...  # point GhostRoll's s3_endpoint_url at proxy.endpoint_url
    proxy.set_plan(None)  # faults off: every byte passes through untouched
    proxy.stop()

Bytes are forwarded unchanged in both directions, Host header included: SigV4 signs the
host the client addressed, which is the proxy's, so both headers and presigned URLs made
for `proxy.endpoint_url` stay valid through it (and only through it: a presigned URL is
bound to its host). Each request (HTTP/1.1 keep-alive, no pipelining, like boto3 and
urllib) draws one action from a seeded random generator:

    latency    sleep before forwarding (added to any other action)
    5xx        answer 503 SlowDown / 500 InternalError without forwarding; once drawn,
               the next `burst - 1` requests get one too
    reset      TCP RST mid-body: the request body when there is one, else the response's
    truncate   the response is cut short (inside its body, or its head when it has no
               body) and the connection closed cleanly

Which request gets which fault depends on the order requests arrive in (parallel uploads
interleave), so a seed fixes the mix of faults, not the exact victim of each.
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import BinaryIO, Protocol

HOST = "127.0.0.1"
_BUF = 64 * 1024


@dataclass(frozen=True)
class FaultPlan:
    latency_ms: tuple[int, int] = (0, 0)
    p_5xx: float = 0.0
    burst: int = 1
    p_reset: float = 0.0
    p_truncate: float = 0.0


@dataclass(frozen=True)
class Action:
    kind: str  # pass | 5xx | reset | truncate
    latency_s: float = 0.0
    status: int = 0
    cut: float = 0.5  # where in the body (fraction) a reset or truncation lands


@dataclass(frozen=True)
class _Framing:
    length: int | None  # None: chunked, or (responses) until the connection closes
    chunked: bool


class _Out(Protocol):
    def sendall(self, data: bytes, /) -> None: ...


class _Dropped(Exception):
    """The proxy cut this connection on purpose."""


def _rst(sock: socket.socket) -> None:
    """Abort the connection: the peer gets a TCP RST now. The descriptor is closed
    directly, since the buffered reader on this socket would otherwise keep it open."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        os.close(sock.detach())


def _hang_up(sock: socket.socket) -> None:
    """Wake a thread blocked reading this socket (it reads end of stream)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _read_head(reader: BinaryIO) -> bytes | None:
    """Start line + headers, exactly as sent (None when the peer closed first)."""
    lines = []
    while True:
        line = reader.readline(_BUF)
        if not line:
            return None if not lines else b"".join(lines)
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _headers(head: bytes) -> dict[str, str]:
    out = {}
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            out[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return out


def _framing(headers: dict[str, str], *, no_body: bool, request: bool) -> _Framing:
    if no_body:
        return _Framing(0, False)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _Framing(None, True)
    if "content-length" in headers:
        return _Framing(int(headers["content-length"]), False)
    return _Framing(0 if request else None, False)


def _copy_body(reader: BinaryIO, out: _Out, framing: _Framing,
               limit: int | None = None) -> int:
    """Forward one message body; stops after `limit` bytes (then raises _Dropped)."""
    sent = 0

    def forward(data: bytes) -> None:
        nonlocal sent
        if limit is not None and sent + len(data) >= limit:
            out.sendall(data[:max(0, limit - sent)])
            raise _Dropped
        out.sendall(data)
        sent += len(data)

    if framing.chunked:
        while True:
            size_line = reader.readline(_BUF)
            if not size_line:
                raise _Dropped
            forward(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (trailer := reader.readline(_BUF)) not in (b"\r\n", b"\n", b""):
                    forward(trailer)
                forward(b"\r\n")
                return sent
            forward(_read_exact(reader, size + 2))
    remaining = framing.length
    while remaining is None or remaining > 0:
        data = reader.read1(_BUF if remaining is None else min(_BUF, remaining))  # type: ignore[attr-defined]
        if not data:
            if remaining is None:
                return sent
            raise _Dropped
        forward(data)
        if remaining is not None:
            remaining -= len(data)
    return sent


def _read_exact(reader: BinaryIO, n: int) -> bytes:
    data = reader.read(n)
    if len(data) != n:
        raise _Dropped
    return data


def _error_response(status: int) -> bytes:
    code, text = ((503, "SlowDown"), (500, "InternalError"))[status != 503]
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{text}</Code>'
            f"<Message>injected by the fault proxy</Message></Error>").encode()
    reason = "Slow Down" if status == 503 else "Internal Server Error"
    return (f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


class FaultProxy:
    """One listening socket on 127.0.0.1, one thread per client connection."""

    def __init__(self, upstream: tuple[str, int], seed: int = 0) -> None:
        self.upstream = upstream
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._plan: FaultPlan | None = None
        self._burst_left = 0
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        self.counts: collections.Counter[str] = collections.Counter()

    # ------------------------------------------------------------ control
    @property
    def port(self) -> int:
        assert self._listener is not None, "start() first"
        return int(self._listener.getsockname()[1])

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, 0))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, name="faultproxy", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            _hang_up(conn)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_plan(self, plan: FaultPlan | None) -> None:
        """Switch faults at run time (None: pass everything through)."""
        with self._lock:
            self._plan = plan
            self._burst_left = 0

    def draw(self) -> Action:
        """The action for the next request (seeded)."""
        with self._lock:
            plan, rng = self._plan, self._rng
            self.counts["requests"] += 1
            if plan is None:
                return Action("pass")
            low, high = plan.latency_ms
            latency = rng.uniform(low, high) / 1000 if high > 0 else 0.0
            if self._burst_left > 0:
                self._burst_left -= 1
                return self._count(Action("5xx", latency, 503))
            roll = rng.random()
            if roll < plan.p_5xx:
                self._burst_left = max(0, plan.burst - 1)
                return self._count(Action("5xx", latency, rng.choice((503, 500))))
            roll -= plan.p_5xx
            if roll < plan.p_reset:
                return self._count(Action("reset", latency, cut=rng.uniform(0.05, 0.95)))
            roll -= plan.p_reset
            if roll < plan.p_truncate:
                return self._count(Action("truncate", latency, cut=rng.uniform(0.05, 0.95)))
            return self._count(Action("pass", latency))

    def _count(self, action: Action) -> Action:
        self.counts[action.kind] += 1
        if action.latency_s:
            self.counts["delayed"] += 1
        return action

    # ------------------------------------------------------------ serving
    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=120)
        except OSError:
            _rst(client)
            return
        with self._lock:
            self._conns.update((client, upstream))
        client.settimeout(120)
        c_reader = client.makefile("rb")
        u_reader = upstream.makefile("rb")
        try:
            while self._exchange(client, c_reader, upstream, u_reader):
                pass
        except (_Dropped, OSError, ValueError):
            pass
        finally:
            with self._lock:
                self._conns.difference_update((client, upstream))
            for closeable in (c_reader, u_reader):
                with contextlib.suppress(OSError):
                    closeable.close()
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.close()

    def _exchange(self, client: socket.socket, c_reader: BinaryIO, upstream: socket.socket,
                  u_reader: BinaryIO) -> bool:
        """One request and its response; False when the connection is done."""
        head = _read_head(c_reader)
        if head is None:
            return False
        method = head.split(b" ", 1)[0].upper()
        req_headers = _headers(head)
        req_framing = _framing(req_headers, no_body=False, request=True)
        action = self.draw()
        if action.latency_s:
            time.sleep(action.latency_s)
        if action.kind == "5xx":
            if "100-continue" not in req_headers.get("expect", "").lower():
                _copy_body(c_reader, _Sink(), req_framing)
            client.sendall(_error_response(action.status))
            return False
        upstream.sendall(head)
        cut_request = (action.kind == "reset" and req_framing.length is not None
                       and req_framing.length > 0)
        sender = threading.Thread(target=self._send_body, daemon=True, args=(
            c_reader, client, upstream, req_framing,
            int(req_framing.length * action.cut) if cut_request and req_framing.length
            else None))
        sender.start()
        try:
            keep = self._relay_response(method, client, u_reader, action, cut_request)
        finally:
            sender.join(timeout=130)
        return keep

    def _send_body(self, c_reader: BinaryIO, client: socket.socket, upstream: socket.socket,
                   framing: _Framing, limit: int | None) -> None:
        try:
            _copy_body(c_reader, upstream, framing, limit)
        except _Dropped:
            _rst(client)
            _hang_up(upstream)
        except OSError:
            pass

    def _relay_response(self, method: bytes, client: socket.socket, u_reader: BinaryIO,
                        action: Action, cut_request: bool) -> bool:
        while True:
            head = _read_head(u_reader)
            if head is None:
                return False
            status = int(head.split(b" ", 2)[1])
            if status >= 200:
                break
            client.sendall(head)  # 100 Continue and friends
        headers = _headers(head)
        framing = _framing(headers, no_body=method == b"HEAD" or status in (204, 304),
                           request=False)
        if action.kind == "truncate" or (action.kind == "reset" and not cut_request):
            client.sendall(_cut(head, _collect(u_reader, framing), action.cut))
            if action.kind == "truncate":
                client.shutdown(socket.SHUT_RDWR)
            else:
                _rst(client)
            return False
        client.sendall(head)
        _copy_body(u_reader, client, framing)
        return (framing.length is not None or framing.chunked) and \
            "close" not in headers.get("connection", "").lower()


def _cut(head: bytes, body: bytes, where: float) -> bytes:
    """A response cut short: inside the body when there is one, else inside the head
    (where a client may not notice: a lost last header line looks like a short head)."""
    if body:
        return head + body[:int(len(body) * where)]
    return head[:max(1, min(len(head) - 4, int(len(head) * where)))]


class _Sink:
    """Where a refused request's body goes."""

    def sendall(self, data: bytes) -> None:
        pass


def _collect(reader: BinaryIO, framing: _Framing) -> bytes:
    class _Buffer:
        def __init__(self) -> None:
            self.parts: list[bytes] = []

        def sendall(self, data: bytes) -> None:
            self.parts.append(data)

    buffer = _Buffer()
    _copy_body(reader, buffer, framing)
    return b"".join(buffer.parts)
