"""sd_notify through a real bound AF_UNIX datagram socket set as NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghostroll.devices.notify import Notifier, socket_address


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield sock, str(path)
    sock.close()


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_without_notify_socket_everything_is_a_quiet_no_op() -> None:
    n = Notifier(env={})
    assert not n.enabled
    assert n.ready() is False and n.status("x") is False and n.watchdog() is False
    assert n.stopping() is False and n.watchdog_interval() is None
    n.close()


def test_messages_reach_the_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    n = Notifier(env={"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("idle")
    assert received(sock) == "READY=1\nSTATUS=idle\n"
    assert n.status("copying 12/40\nREADY=1")  # a newline cannot smuggle in a field
    assert received(sock) == "STATUS=copying 12/40 READY=1\n"
    assert n.watchdog()
    assert received(sock) == "WATCHDOG=1\n"
    assert n.stopping("shutting down")
    assert received(sock) == "STOPPING=1\nSTATUS=shutting down\n"
    n.close()


def test_reads_notify_socket_from_the_process_environment(
        listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    n = Notifier()
    assert n.ready()
    assert received(sock) == "READY=1\n"
    n.close()


def test_abstract_namespace_socket() -> None:
    name = f"ghostroll-test-{os.getpid()}-{id(object())}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(socket_address("@" + name))
    sock.settimeout(5)
    try:
        n = Notifier(env={"NOTIFY_SOCKET": "@" + name})
        assert n.status("ok")
        assert received(sock) == "STATUS=ok\n"
        n.close()
    finally:
        sock.close()


def test_gone_socket_warns_once_and_never_raises(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    n = Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "nobody-listens.sock")})
    assert n.ready() is False
    assert n.watchdog() is False
    assert caplog.text.count("sd_notify to") == 1
    n.close()


def test_bad_notify_socket_value_is_ignored_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    n = Notifier(env={"NOTIFY_SOCKET": "relative.sock"})
    assert not n.enabled and "neither a path" in caplog.text


@pytest.mark.parametrize("env, expected", [
    ({"WATCHDOG_USEC": "30000000"}, 30.0),
    ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # someone else's
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({}, None),
])
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert Notifier(env=env).watchdog_interval() == expected
