"""The PiSugar client against a fake pisugar-server on loopback speaking the real protocol:
readings, reply parsing, event and garbage lines, errors, timeouts, reconnects."""

from __future__ import annotations

import queue
import socket
import threading

import pytest

from ghostroll.devices.battery import (
    BatteryMonitor,
    BatteryReading,
    PiSugarConnection,
    parse_address,
    parse_bool,
    parse_percent,
    reply_value,
)
from ghostroll.errors import ConfigError
from tests.support.fake_pisugar import FakePiSugar

WAIT = 10.0  # generous upper bound for a reading to arrive; tests end as soon as it does


def test_parsers() -> None:
    assert reply_value("battery: 87.5", "battery") == "87.5"
    assert reply_value("battery_charging: true", "battery") is None  # not a prefix match
    assert reply_value("model: PiSugar 2 (4-LEDs)", "model") == "PiSugar 2 (4-LEDs)"
    assert parse_percent("100") == 100.0 and parse_percent("87.5") == 87.5
    assert parse_percent("101.3") == 100.0 and parse_percent("-2") == 0.0
    assert parse_percent("I2C error") is None and parse_percent("nan") is None
    assert parse_bool("true") is True and parse_bool("false") is False
    assert parse_bool("maybe") is None
    assert parse_address("127.0.0.1:8423") == ("127.0.0.1", 8423)
    assert parse_address("[::1]:8423") == ("::1", 8423)
    for bad in ("8423", "localhost", "host:port", "127.0.0.1:0", "127.0.0.1:70000"):
        with pytest.raises(ConfigError, match="HOST:PORT"):
            parse_address(bad)


def test_fake_formats_like_pisugar_server() -> None:
    with FakePiSugar(level=100.0, charging=True) as fake:
        assert fake.reply("get battery") == "battery: 100"
        fake.level = 42.25
        assert fake.reply("get battery") == "battery: 42.25"
        assert fake.reply("get battery_charging") == "battery_charging: true"
        assert fake.reply("get nonsense") == "Invalid request."


def test_one_poll_reads_every_value() -> None:
    with FakePiSugar(level=87.5, charging=True, plugged=True, model="PiSugar 3") as fake:
        monitor = BatteryMonitor(fake.address, timeout=2.0, clock=lambda: 1234.0)
        reading = monitor.poll()
        monitor.stop()
    assert reading == BatteryReading(87.5, True, True, "PiSugar 3", 1234.0)
    assert fake.requests == ["get model", "get battery", "get battery_charging",
                             "get battery_power_plugged"]


def test_monitor_publishes_readings_and_changes() -> None:
    readings: queue.Queue[BatteryReading | None] = queue.Queue()
    with FakePiSugar(level=50.0) as fake:
        monitor = BatteryMonitor(fake.address, readings.put, interval=0.05,
                                 timeout=2.0).start()
        first = readings.get(timeout=WAIT)
        assert first is not None and first.percent == 50.0 and first.charging is False
        fake.level, fake.charging = 49.0, True
        while True:
            r = readings.get(timeout=WAIT)
            assert r is not None
            if r.percent == 49.0:
                break
        assert r.charging is True
        assert monitor.latest is not None
        monitor.stop()
    assert monitor.connects == 1  # one connection reused for every poll


def test_no_server_means_no_reading_once_and_no_error() -> None:
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there now
    readings: queue.Queue[BatteryReading | None] = queue.Queue()
    monitor = BatteryMonitor(f"127.0.0.1:{port}", readings.put, timeout=0.5,
                             backoff_initial=0.01, backoff_max=0.02).start()
    assert readings.get(timeout=WAIT) is None
    while monitor.failures < 5:
        threading.Event().wait(0.02)
    monitor.stop()
    assert readings.empty()  # None is published once, not on every retry
    assert monitor.latest is None
    assert "ConnectionRefusedError" in (monitor.last_error or "")


def test_reconnects_after_the_server_drops_the_connection() -> None:
    readings: queue.Queue[BatteryReading | None] = queue.Queue()
    with FakePiSugar(level=70.0) as fake:
        monitor = BatteryMonitor(fake.address, readings.put, interval=0.05, timeout=1.0,
                                 backoff_initial=0.01).start()
        assert readings.get(timeout=WAIT) is not None
        fake.level = 69.0
        fake.drop_connections()
        while True:
            r = readings.get(timeout=WAIT)
            if r is not None and r.percent == 69.0:
                break
        monitor.stop()
    assert monitor.connects >= 2 and fake.accepted >= 2
    assert monitor.failures >= 1


def test_server_that_stops_answering_times_out_then_recovers() -> None:
    readings: queue.Queue[BatteryReading | None] = queue.Queue()
    with FakePiSugar(level=30.0) as fake:
        monitor = BatteryMonitor(fake.address, readings.put, interval=0.05, timeout=0.2,
                                 backoff_initial=0.01, backoff_max=0.05).start()
        assert readings.get(timeout=WAIT) is not None
        fake.mute = True
        while (r := readings.get(timeout=WAIT)) is not None:
            pass
        assert r is None
        assert "TimeoutError" in (monitor.last_error or "")
        fake.mute = False
        while (r := readings.get(timeout=WAIT)) is None:
            pass
        monitor.stop()
    assert r.percent == 30.0
    assert monitor.connects >= 2  # the stalled connection was abandoned


def test_event_and_garbage_lines_are_skipped() -> None:
    with FakePiSugar(level=64.0, charging=True) as fake:
        fake.garbage = ["single", "", "\x00\x01 binary junk \xff", "battery_v: 3.9",
                        "Hint: use 'help'", "long"]
        conn = PiSugarConnection("127.0.0.1", fake.port, timeout=2.0)
        try:
            assert conn.get("battery") == "64"
            assert conn.get("battery_charging") == "true"
            fake.send_event("double")  # pushed between requests, like a tap on the PiSugar
            fake.garbage = []
            assert conn.get("model") == "PiSugar 3"
        finally:
            conn.close()
    assert "single" in conn.skipped and "double" in conn.skipped
    assert "battery_v: 3.9" in conn.skipped


def test_overlong_line_without_newline_is_dropped() -> None:
    with FakePiSugar(level=12.0) as fake:
        fake.garbage = ["x" * 10_000]
        conn = PiSugarConnection("127.0.0.1", fake.port, timeout=2.0)
        try:
            assert conn.get("battery") == "12"
        finally:
            conn.close()


@pytest.mark.parametrize("style", ["invalid", "error"])
def test_unreadable_level_means_no_reading(style: str) -> None:
    with FakePiSugar(level=80.0) as fake:
        fake.fail = {"battery": style}
        monitor = BatteryMonitor(fake.address, timeout=1.0)
        assert monitor.poll() is None
        fake.fail = {"battery_charging": style}
        reading = monitor.poll()
        monitor.stop()
    assert reading is not None and reading.percent == 80.0 and reading.charging is None
    assert monitor.connects == 1  # an error reply is not a broken connection


def test_callback_errors_do_not_stop_the_monitor(caplog: pytest.LogCaptureFixture) -> None:
    calls: queue.Queue[int] = queue.Queue()

    def bad(reading: BatteryReading | None) -> None:
        calls.put(1)
        raise RuntimeError("subscriber bug")

    with FakePiSugar(level=90.0) as fake:
        monitor = BatteryMonitor(fake.address, bad, interval=0.02, timeout=1.0).start()
        calls.get(timeout=WAIT)
        calls.get(timeout=WAIT)  # still polling after the first failure
        monitor.stop()
    assert "reading callback failed" in caplog.text
