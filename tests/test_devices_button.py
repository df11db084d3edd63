"""The button as hardware stories on gpiozero's MockFactory (press, hold, release), the
no-GPIO fallback, and the scripted and keyboard backends."""

from __future__ import annotations

import io
import json
import os
import queue
import subprocess
import sys
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from ghostroll.devices import DeviceError
from ghostroll.devices.button import (
    GpioButton,
    KeyboardButton,
    Press,
    ScriptedButton,
    ScriptedPress,
    open_button,
    parse_presses,
)
from ghostroll.errors import ConfigError

PIN = 26
WAIT = 10.0


@pytest.fixture
def factory() -> MockFactory:
    f = MockFactory()
    yield f
    f.close()


def test_pull_up_and_pin(factory: MockFactory) -> None:
    button = GpioButton(PIN, lambda p: None, hold_time=5, pin_factory=factory)
    pin = factory.pin(PIN)
    assert pin.pull == "up"
    assert not button.is_pressed
    pin.drive_low()
    assert button.is_pressed
    pin.drive_high()
    button.close()


def test_short_press(factory: MockFactory) -> None:
    events: list[Press] = []
    button = GpioButton(PIN, events.append, hold_time=5, pin_factory=factory)
    pin = factory.pin(PIN)
    pin.drive_low()
    pin.drive_high()
    pin.drive_low()
    pin.drive_high()
    button.close()
    assert events == [Press.SHORT, Press.SHORT]


def test_long_press_fires_while_held_and_release_is_not_a_short_press(
        factory: MockFactory) -> None:
    events: queue.Queue[Press] = queue.Queue()
    button = GpioButton(PIN, events.put, hold_time=0.05, pin_factory=factory)
    pin = factory.pin(PIN)
    pin.drive_low()
    assert events.get(timeout=WAIT) is Press.LONG  # before the finger lifts
    pin.drive_high()
    button.close()
    assert events.empty()  # the release after the hold produced nothing


def test_hold_then_short_press_sequence(factory: MockFactory) -> None:
    events: queue.Queue[Press] = queue.Queue()
    button = GpioButton(PIN, events.put, hold_time=0.05, pin_factory=factory)
    pin = factory.pin(PIN)
    pin.drive_low()
    assert events.get(timeout=WAIT) is Press.LONG
    pin.drive_high()
    button._button.hold_time = 5  # the next press is brief compared to the hold time
    pin.drive_low()
    pin.drive_high()
    assert events.get(timeout=WAIT) is Press.SHORT
    button.close()
    assert events.empty()


def test_handler_errors_are_logged_not_raised(factory: MockFactory,
                                              caplog: pytest.LogCaptureFixture) -> None:
    def bad(press: Press) -> None:
        raise RuntimeError("state machine bug")

    button = GpioButton(PIN, bad, hold_time=5, pin_factory=factory)
    pin = factory.pin(PIN)
    pin.drive_low()
    pin.drive_high()
    button.close()
    assert "press handler failed" in caplog.text


def test_open_button_with_a_factory_and_with_a_bad_pin(factory: MockFactory) -> None:
    button = open_button(PIN, lambda p: None, hold_time=1, pin_factory=factory)
    assert isinstance(button, GpioButton)
    with pytest.raises(DeviceError, match="BCM pin 26"):
        open_button(PIN, lambda p: None, pin_factory=factory)  # already in use
    button.close()
    with pytest.raises(DeviceError, match="BCM pin 99"):
        open_button(99, lambda p: None, pin_factory=factory)


def test_no_gpio_on_this_machine_is_a_warning_not_a_crash() -> None:
    """gpiozero's own probe, in a fresh process (gpiozero keeps its factory globally)."""
    code = (
        "import warnings, sys\n"
        "from ghostroll.devices import DeviceFallback\n"
        "from ghostroll.devices.button import open_button\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    b = open_button(26, print)\n"
        "ours = [str(x.message) for x in w if issubclass(x.category, DeviceFallback)]\n"
        "print(b is None, ours)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
    if os.path.exists("/proc/device-tree/model") or os.path.exists("/dev/gpiochip0"):
        pytest.skip("this machine may have real GPIO")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=60)
    assert out.stdout.startswith("True ["), out.stdout + out.stderr
    assert "no GPIO on this machine" in out.stdout


def test_parse_presses() -> None:
    assert parse_presses(["long@10", "short@2.5,short@3"]) == [
        ScriptedPress(Press.SHORT, 2.5), ScriptedPress(Press.SHORT, 3.0),
        ScriptedPress(Press.LONG, 10.0)]
    for bad in ("short", "tap@1", "short@-1", "short@soon", "long@inf"):
        with pytest.raises(ConfigError, match="short@SECONDS"):
            parse_presses([bad])


def test_scripted_button_fires_in_order() -> None:
    events: list[Press] = []
    button = ScriptedButton(parse_presses(["long@0.02,short@0"]), events.append).start()
    assert button.wait(WAIT)
    button.close()
    assert events == [Press.SHORT, Press.LONG] == button.fired


def test_scripted_button_can_be_stopped_before_its_presses() -> None:
    events: list[Press] = []
    button = ScriptedButton([ScriptedPress(Press.LONG, 3600)], events.append).start()
    button.close()
    assert not button.wait(0) and events == []


def test_keyboard_button(caplog: pytest.LogCaptureFixture) -> None:
    events: list[Press] = []
    button = KeyboardButton(io.StringIO("\nl\nx\nshort\nLONG\n"), events.append).start()
    button.join(WAIT)
    assert events == [Press.SHORT, Press.LONG, Press.SHORT, Press.LONG]
    assert "Enter = short press" in caplog.text


def test_keyboard_button_over_a_real_pipe() -> None:
    read_fd, write_fd = os.pipe()
    events: queue.Queue[Press] = queue.Queue()
    with os.fdopen(read_fd) as reader, os.fdopen(write_fd, "w") as writer:
        button = KeyboardButton(reader, events.put).start()
        writer.write("l\n")
        writer.flush()
        assert events.get(timeout=WAIT) is Press.LONG
        writer.close()  # EOF ends the reader thread
        button.join(WAIT)
        assert not button._thread.is_alive()


def test_a_required_factory_that_cannot_load_is_an_error_not_a_fallback() -> None:
    """The appliance unit sets GPIOZERO_PIN_FACTORY=lgpio: without a working lgpio the
    button must fail loudly (DeviceError, shown on the panel), never fall back quietly."""
    code = (
        "import warnings\n"
        "from ghostroll.devices import DeviceError\n"
        "from ghostroll.devices.button import open_button\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    try:\n"
        "        open_button(26, print)\n"
        "        print('OPENED')\n"
        "    except DeviceError as exc:\n"
        "        print('REFUSED', exc)\n"
        "print('WARNINGS', len(w))\n"
    )
    if os.path.exists("/dev/gpiochip0"):
        pytest.skip("this machine may have real GPIO")
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "lgpio"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=60)
    assert "REFUSED button: pin factory 'lgpio' cannot load" in out.stdout, out.stdout + out.stderr
    assert "WARNINGS 0" in out.stdout


def test_the_button_reports_its_factory(factory: MockFactory) -> None:
    button = open_button(PIN, lambda p: None, pin_factory=factory)
    assert button is not None and button.factory == "mock"
    button.close()


def test_the_service_shows_a_button_that_cannot_start_on_the_panel(tmp_path: Path) -> None:
    """The appliance (GPIOZERO_PIN_FACTORY=lgpio, here without lgpio): the service posts
    a problem titled for the button, the machine shows it, and doctor's record says why."""
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from ghostroll import config\n"
        "from ghostroll.appliance import machine as sm\n"
        "from ghostroll.appliance.run_service import _open_button\n"
        "class Service:\n"
        "    posted = []\n"
        "    def post(self, message): self.posted.append(message)\n"
        "run = Path(sys.argv[1])\n"
        "(run.parent / 'c.toml').write_text('')\n"
        "cfg = config.load(config_file=run.parent / 'c.toml', "
        "env={'GHOSTROLL_RUNTIME_DIR': str(run)})\n"
        "s = Service()\n"
        "assert _open_button(cfg, print, s) is None\n"
        "[message] = s.posted\n"
        "m, _ = sm.step(sm.Model(), sm.Event(message, 1.0))\n"
        "print(json.dumps([m.state, m.error, m.error_hint[:60]]))\n"
        "print(json.dumps(json.loads((run / 'devices.json').read_text())))\n"
    )
    if os.path.exists("/dev/gpiochip0"):
        pytest.skip("this machine may have real GPIO")
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "lgpio"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    shown, record = out.stdout.splitlines()[-2:]
    assert json.loads(shown)[:2] == ["error", "Button not working"]
    assert "pin factory 'lgpio' cannot load" in json.loads(record)["button_error"]
