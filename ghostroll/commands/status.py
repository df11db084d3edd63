"""`ghostroll status`: what the running appliance shows, asked over its socket."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from ghostroll.appliance import protocol as p
from ghostroll.appliance.link import SOCKET_NAME


class NotRunning(ConnectionError):
    pass


def query(runtime_dir: Path, timeout_s: float = 3.0) -> dict[str, Any]:
    path = runtime_dir / SOCKET_NAME
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(str(path))
        except OSError as exc:
            raise NotRunning(f"the GhostRoll service is not running (no answer on {path}: "
                             f"{exc.strerror or exc}); start it with `sudo systemctl start "
                             "ghostroll`") from exc
        sock.sendall(p.encode(p.Query()))
        buffer = b""
        while b"\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise NotRunning("the service closed the connection without answering")
            buffer += chunk
    message = p.decode(buffer.split(b"\n", 1)[0])
    if not isinstance(message, p.Status):
        raise NotRunning(f"unexpected answer from the service: {message.type}")
    return message.status


def lines(status: dict[str, Any]) -> list[str]:
    counts = status.get("counts") or {}
    out = [f"state      {status.get('state')}: {status.get('message')}"]
    if status.get("volume"):
        out.append(f"card       {status['volume']}")
    if counts.get("copied") or counts.get("new"):
        out.append(f"copy       {counts.get('copied', 0)} read, {counts.get('new', 0)} new, "
                   f"{counts.get('skipped', 0)} already safe, {counts.get('failed', 0)} failed")
    if status.get("session_id"):
        out.append(f"session    {status['session_id']}")
    if status.get("copies") is not None:  # an archive target is configured
        from ghostroll.archive.layout import receipt
        out.append(f"copies     {receipt(status['copies'])}")
    if status.get("url"):
        out.append(f"link       {status['url']} (until {status.get('link_expires')})")
    if status.get("error"):
        out.append(f"error      {status['error']}")
    battery = status.get("battery_percentage")
    out.append("battery    " + (f"{battery:.0f} %" + (" charging" if status.get(
        "battery_charging") else "") if battery is not None else "unknown"))
    out.append(f"host       {status.get('hostname')} {status.get('ip') or ''}".rstrip())
    return out


def render(status: dict[str, Any], as_json: bool) -> str:
    return json.dumps(status, indent=2) if as_json else "\n".join(lines(status))
