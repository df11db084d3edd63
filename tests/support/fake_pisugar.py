"""A fake pisugar-server on 127.0.0.1 (a free port) speaking the real TCP text protocol.

Replies are formatted the way pisugar-server formats them (`battery: 87.5`,
`battery: 100` for whole numbers as Rust prints floats, `battery_charging: true`,
`model: PiSugar 3`, `Invalid request.` for unknown requests on older servers) and tap
events are pushed as bare lines. Test verbs: set `level`/`charging`/`plugged`/`model`,
`mute` (read requests, answer nothing), `garbage` (lines sent before every reply),
`fail` (names answered with an error), `drop_connections()`, `send_event()`, `stop()`.
"""

from __future__ import annotations

import contextlib
import socket
import threading


def rust_float(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class FakePiSugar:
    def __init__(self, level: float = 87.5, charging: bool = False, plugged: bool = False,
                 model: str = "PiSugar 3") -> None:
        self.level = level
        self.charging = charging
        self.plugged = plugged
        self.model = model
        self.mute = False
        self.garbage: list[str] = []
        self.fail: dict[str, str] = {}  # name -> "invalid" | "error"
        self.requests: list[str] = []
        self.accepted = 0
        self._lock = threading.Lock()
        self._clients: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="fake-pisugar", daemon=True)
        self._thread.start()

    def __enter__(self) -> FakePiSugar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.drop_connections()

    def drop_connections(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()

    def send_event(self, name: str) -> None:
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.sendall(f"{name}\n".encode())

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._clients)

    def reply(self, request: str) -> str:
        parts = request.split(" ")
        if len(parts) != 2 or parts[0] != "get":
            return "Invalid request."
        name = parts[1]
        style = self.fail.get(name)
        if style == "invalid":
            return "Invalid request."
        if style == "error":
            return f"{name}: I2C error: Remote I/O error (os error 121)"
        values = {
            "battery": lambda: rust_float(self.level),
            "battery_charging": lambda: str(self.charging).lower(),
            "battery_power_plugged": lambda: str(self.plugged).lower(),
            "model": lambda: self.model,
        }
        if name not in values:
            return "Invalid request."
        return f"{name}: {values[name]()}"

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._clients.append(client)
                self.accepted += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        buf = b""
        while True:
            try:
                data = client.recv(4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                request = raw.decode("utf-8", "replace").strip()
                if not request:
                    continue
                self.requests.append(request)
                if self.mute:
                    continue
                out = "".join(line + "\n" for line in self.garbage) + self.reply(request) + "\n"
                try:
                    client.sendall(out.encode())
                except OSError:
                    return
